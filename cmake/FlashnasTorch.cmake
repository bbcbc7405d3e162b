# LibTorch for flashnas, from the pinned PyPI torch wheel: scripts/setup.sh
# puts torch.utils.cmake_prefix_path on CMAKE_PREFIX_PATH.
#
# Defines the INTERFACE target flashnas_torch.
#  - FLASHNAS_CUDA=ON: the wheel's own find_package(Torch) (which needs the
#    CUDA Toolkit) for headers and flags; the real libraries torch_cpu,
#    torch_cuda, c10 and c10_cuda are linked directly. (The wheel's libtorch.so
#    shim exports its own std::filesystem symbols, which interpose libstdc++'s
#    and crash: seen as std::filesystem::remove_all jumping to address 0.)
#  - FLASHNAS_CUDA=OFF: only the CPU libraries (torch_cpu, c10) and headers,
#    imported from the same install prefix. The wheel's TorchConfig would
#    otherwise demand the CUDA Toolkit even for a CPU build, and every process
#    would load the 450 MB libtorch_cuda.

add_library(flashnas_torch INTERFACE)

if(FLASHNAS_CUDA)
  # The wheel's Caffe2 config probes for installed GPUs unless an
  # architecture list is given; flashnas targets Hopper (H100/H200).
  if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST} AND NOT TORCH_CUDA_ARCH_LIST)
    set(TORCH_CUDA_ARCH_LIST "9.0")
  endif()
  find_package(Torch REQUIRED)
  separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_include_directories(flashnas_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  foreach(_lib torch_cpu torch_cuda c10_cuda c10)
    find_library(FLASHNAS_${_lib}_LIB ${_lib} PATHS ${TORCH_INSTALL_PREFIX}/lib NO_DEFAULT_PATH REQUIRED)
  endforeach()
  # --no-as-needed: nothing references torch_cuda by symbol, but its static
  # initialisers register the CUDA kernels and must run.
  target_link_libraries(flashnas_torch INTERFACE ${FLASHNAS_torch_cpu_LIB}
    "-Wl,--no-as-needed" ${FLASHNAS_torch_cuda_LIB} ${FLASHNAS_c10_cuda_LIB} "-Wl,--as-needed" ${FLASHNAS_c10_LIB})
  target_compile_options(flashnas_torch INTERFACE $<$<COMPILE_LANGUAGE:CXX>:${_torch_flags}>)
  # FLASHNAS_WITH_CUDA is not a compile flag: it lives in the generated
  # flashnas_cuda.h, so that only the files that include it differ from a CPU
  # build (CMakeLists.txt).
else()
  find_path(FLASHNAS_TORCH_CMAKE_DIR TorchConfig.cmake
    HINTS ${CMAKE_PREFIX_PATH} PATH_SUFFIXES Torch share/cmake/Torch)
  if(NOT FLASHNAS_TORCH_CMAKE_DIR)
    message(FATAL_ERROR "LibTorch not found. Run scripts/setup.sh, or pass "
      "-DCMAKE_PREFIX_PATH=$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')")
  endif()
  get_filename_component(TORCH_INSTALL_PREFIX "${FLASHNAS_TORCH_CMAKE_DIR}/../../.." ABSOLUTE)
  find_library(FLASHNAS_TORCH_CPU_LIB torch_cpu PATHS ${TORCH_INSTALL_PREFIX}/lib NO_DEFAULT_PATH REQUIRED)
  find_library(FLASHNAS_C10_LIB c10 PATHS ${TORCH_INSTALL_PREFIX}/lib NO_DEFAULT_PATH REQUIRED)
  target_include_directories(flashnas_torch SYSTEM INTERFACE
    ${TORCH_INSTALL_PREFIX}/include ${TORCH_INSTALL_PREFIX}/include/torch/csrc/api/include)
  target_link_libraries(flashnas_torch INTERFACE ${FLASHNAS_TORCH_CPU_LIB} ${FLASHNAS_C10_LIB})
  message(STATUS "LibTorch (CPU libraries): ${TORCH_INSTALL_PREFIX}")
endif()
