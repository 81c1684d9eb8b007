# Build options. Everything is per target (see target_defaults.cmake); nothing here touches the
# global flags.

option(KAWIPIKO_WARNINGS_AS_ERRORS "Treat compiler warnings as errors" OFF)
set(KAWIPIKO_SANITIZE
    ""
    CACHE STRING "Sanitizers to build with, as for -fsanitize= (e.g. address,undefined)")
option(KAWIPIKO_BUILD_BENCH "Build the micro-benchmarks in bench/" OFF)
option(KAWIPIKO_FUZZ "Build the libFuzzer targets in test/fuzz/ (clang++ only)" OFF)

include(CTest) # defines BUILD_TESTING (ON by default)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE
      RelWithDebInfo
      CACHE STRING "Build type" FORCE)
endif()
