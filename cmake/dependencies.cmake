# Every find_package of the project, once. All come from Debian 12's packages (README.rst lists
# them).

find_package(Threads REQUIRED)

# Pinned to the Boost the set-up installs (libboost1.81-all-dev).
find_package(Boost 1.81.0 EXACT CONFIG REQUIRED COMPONENTS program_options)

find_package(ZLIB REQUIRED)

# Debian ships no CMake package for brotli: pkg-config it is.
find_package(PkgConfig REQUIRED)
pkg_check_modules(BROTLI REQUIRED IMPORTED_TARGET libbrotlienc libbrotlidec)

# HTTP/2: nghttp2's session (framing, HPACK, flow control, stream states and the floods it
# guards against), the library behind curl's and Apache's HTTP/2. Debian's package has no CMake
# file either.
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)

# --sandbox's system-call filter: libseccomp (libseccomp-dev), which compiles an allow-list into
# the BPF program seccomp runs and knows each architecture's numbers. No CMake package either.
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)

# SHA-256 for content hashes and ETags (libcrypto: hardware-accelerated and well kept), and TLS
# (libssl).
find_package(OpenSSL REQUIRED COMPONENTS Crypto SSL)

if(BUILD_TESTING)
  find_package(Catch2 2.13 REQUIRED)
endif()
