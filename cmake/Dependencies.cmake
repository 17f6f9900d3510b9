# Finds what tandem links against (all Debian 12 packages; scripts/setup installs them) and
# gathers it behind one interface target, tandem_deps.
find_package(OpenMP REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

# OpenBLAS: prefer the OpenMP build so that BLAS and our own kernels share one thread pool
# (the pthread build spins its own threads beside OpenMP's and oversubscribes the cores).
find_library(OPENBLAS_LIBRARY NAMES openblas
             HINTS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/aarch64-linux-gnu/openblas-openmp
             NO_DEFAULT_PATH)
if(NOT OPENBLAS_LIBRARY)
  find_library(OPENBLAS_LIBRARY NAMES openblas REQUIRED)
endif()
find_path(CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas-openmp openblas REQUIRED
          HINTS /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/aarch64-linux-gnu/openblas-openmp)
message(STATUS "OpenBLAS: ${OPENBLAS_LIBRARY} (cblas.h in ${CBLAS_INCLUDE_DIR})")

find_library(XXHASH_LIBRARY NAMES xxhash REQUIRED)
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
find_package(CLI11 CONFIG REQUIRED)

add_library(tandem_deps INTERFACE)
target_include_directories(tandem_deps INTERFACE ${CBLAS_INCLUDE_DIR} ${XXHASH_INCLUDE_DIR})
target_link_libraries(tandem_deps INTERFACE OpenMP::OpenMP_CXX nlohmann_json::nlohmann_json
                      ${OPENBLAS_LIBRARY} ${XXHASH_LIBRARY} PkgConfig::PCRE2 Threads::Threads)

# CUDA is optional: AUTO enables it when nvcc is found (CI has nvcc but no GPU, so the CUDA code
# is always compiled there and its tests skip themselves at run time).
set(TANDEM_CUDA_ENABLED OFF)
if(NOT TANDEM_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_ARCHITECTURES 80-real 90-real 90-virtual)
    set(TANDEM_CUDA_ENABLED ON)
  elseif(TANDEM_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TANDEM_CUDA=ON but no CUDA compiler was found (is /usr/local/cuda installed?)")
  endif()
endif()
message(STATUS "CUDA backend: ${TANDEM_CUDA_ENABLED}")
