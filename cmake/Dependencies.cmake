# Finds what tandem links against (all Debian 12 packages; scripts/setup installs them) and
# gathers it behind one interface target, tandem_deps.
find_package(OpenMP REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(Threads REQUIRED)

# OpenBLAS: prefer the OpenMP build so that BLAS and our own kernels share one thread pool
# (the pthread build spins its own threads beside OpenMP's and oversubscribes the cores).
# CMAKE_PREFIX_PATH is searched too: the GPU machines get these packages unpacked into a prefix.
set(openblas_lib_hints "")
set(openblas_include_hints "")
foreach(prefix ${CMAKE_PREFIX_PATH} /usr)
  foreach(arch x86_64-linux-gnu aarch64-linux-gnu)
    list(APPEND openblas_lib_hints ${prefix}/lib/${arch}/openblas-openmp)
    list(APPEND openblas_include_hints ${prefix}/include/${arch}/openblas-openmp)
  endforeach()
endforeach()
find_library(OPENBLAS_LIBRARY NAMES openblas HINTS ${openblas_lib_hints} NO_DEFAULT_PATH)
if(NOT OPENBLAS_LIBRARY)
  find_library(OPENBLAS_LIBRARY NAMES openblas REQUIRED)
endif()
find_path(CBLAS_INCLUDE_DIR cblas.h HINTS ${openblas_include_hints} PATH_SUFFIXES openblas-openmp openblas
          REQUIRED)
# OpenBLAS is not linked: src/backend/cpu/blas.cpp loads it with dlopen, so that tandem rather
# than an inherited OPENBLAS_CORETYPE picks its kernels (OpenBLAS reads that variable in its
# library constructor, before main). It gets the runtime name of the library found here, and
# falls back to the soname where that file is missing.
get_filename_component(openblas_dir ${OPENBLAS_LIBRARY} DIRECTORY)
set(TANDEM_OPENBLAS_RUNTIME ${OPENBLAS_LIBRARY})
if(EXISTS ${openblas_dir}/libopenblas.so.0)
  set(TANDEM_OPENBLAS_RUNTIME ${openblas_dir}/libopenblas.so.0)
endif()
set_source_files_properties(${CMAKE_SOURCE_DIR}/src/backend/cpu/blas.cpp PROPERTIES
                            COMPILE_DEFINITIONS TANDEM_OPENBLAS_PATH="${TANDEM_OPENBLAS_RUNTIME}")
message(STATUS "OpenBLAS: ${TANDEM_OPENBLAS_RUNTIME}, loaded at run time (cblas.h in ${CBLAS_INCLUDE_DIR})")

find_library(XXHASH_LIBRARY NAMES xxhash REQUIRED)
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
find_library(PCRE2_LIBRARY NAMES pcre2-8 REQUIRED)
find_path(PCRE2_INCLUDE_DIR pcre2.h REQUIRED)
# utf8proc: Unicode NFC for tokenizers whose tokenizer.json asks for it (Qwen).
find_library(UTF8PROC_LIBRARY NAMES utf8proc REQUIRED)
find_path(UTF8PROC_INCLUDE_DIR utf8proc.h REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
# Open MPI (libopenmpi-dev): the communicator of `mpirun -np N tandem train`. Only its C API is
# used, by libtandem alone (not libtandem_cuda); the tests launch with MPIEXEC_EXECUTABLE.
find_package(MPI REQUIRED COMPONENTS C)
# cpp-httplib (libcpp-httplib-dev): Debian ships it compiled; its pkg-config file carries the
# defines (OpenSSL, zlib, brotli) that the header's declarations must be read with.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

add_library(tandem_deps INTERFACE)
target_include_directories(tandem_deps INTERFACE ${CBLAS_INCLUDE_DIR} ${XXHASH_INCLUDE_DIR} ${PCRE2_INCLUDE_DIR}
                           ${UTF8PROC_INCLUDE_DIR})
target_link_libraries(tandem_deps INTERFACE OpenMP::OpenMP_CXX nlohmann_json::nlohmann_json
                      ${CMAKE_DL_LIBS} ${XXHASH_LIBRARY} ${PCRE2_LIBRARY} ${UTF8PROC_LIBRARY}
                      Threads::Threads PkgConfig::HTTPLIB)

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
    # CMake 3.25 (Debian 12) knows no CUDA20 dialect for nvcc and stops at generation; nvcc 13
    # takes -std=c++20, so name the flag where CMake lacks it.
    if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_ARCHITECTURES 80-real 90-real 90-virtual)
    set(TANDEM_CUDA_ENABLED ON)
  elseif(TANDEM_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TANDEM_CUDA=ON but no CUDA compiler was found (is /usr/local/cuda installed?)")
  endif()
endif()
message(STATUS "CUDA backend: ${TANDEM_CUDA_ENABLED}")
