# Helpers for metagrad's own targets (tests, examples, benchmarks); never applied to consumers.

# Data folder with mnist-10k/: tests and examples skip cleanly when it is absent.
if(EXISTS "${PROJECT_SOURCE_DIR}/../shared/data")
  get_filename_component(metagrad_default_data "${PROJECT_SOURCE_DIR}/../shared/data" ABSOLUTE)
else()
  set(metagrad_default_data "")
endif()
set(METAGRAD_DATA_DIR "${metagrad_default_data}" CACHE PATH "Folder holding mnist-10k/ (empty: data tests skip)")

function(metagrad_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4)
  endif()
endfunction()

# Benchmarks and examples run fast by default; METAGRAD_NATIVE=OFF keeps the build type's flags only.
function(metagrad_optimize target)
  if(METAGRAD_NATIVE AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -O3 -march=native)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # GCC 12 reports a false positive inside its own AVX-512 intrinsics header when Eigen inlines them.
      target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
    endif()
  endif()
endfunction()

function(metagrad_require_package found cmake_name debian_package)
  if(NOT ${found})
    message(FATAL_ERROR "${cmake_name} was not found. On Debian or Ubuntu: apt-get install ${debian_package} "
                        "(or turn the part that needs it off, see the METAGRAD_BUILD_* options)")
  endif()
endfunction()

# ccache makes rebuilds of Eigen-heavy translation units cheap when it is installed.
find_program(METAGRAD_CCACHE ccache)
if(METAGRAD_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${METAGRAD_CCACHE}")
endif()
