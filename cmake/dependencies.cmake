# Every find_package of the project, once. All come from Debian 12's packages (README.rst lists
# them).

find_package(Threads REQUIRED)

# Pinned to the Boost the set-up installs (libboost1.81-all-dev).
find_package(Boost 1.81.0 EXACT CONFIG REQUIRED COMPONENTS program_options)

find_package(ZLIB REQUIRED)

# Debian ships no CMake package for brotli: pkg-config it is.
find_package(PkgConfig REQUIRED)
pkg_check_modules(BROTLI REQUIRED IMPORTED_TARGET libbrotlienc libbrotlidec)

# SHA-256 for content hashes and ETags (libcrypto: hardware-accelerated and well kept), and TLS
# (libssl).
find_package(OpenSSL REQUIRED COMPONENTS Crypto SSL)

if(BUILD_TESTING)
  find_package(Catch2 2.13 REQUIRED)
endif()
