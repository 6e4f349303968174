# Dependencies from a folder made by scripts/vendor-deps.sh (on a Debian
# machine) instead of the system's -dev packages: for building against
# another LibTorch on a machine without Debian's packages (scripts/gpu-check.sh).
# Defines the same targets and variables as the find_package() calls in the
# top-level CMakeLists.txt.
set(_v ${GRADLENS_VENDOR_DIR})
foreach(_f include/CLI/CLI.hpp include/nlohmann/json.hpp include/fmt/format.h include/eigen3/Eigen/Core
           include/zlib.h include/libdeflate.h include/stb/stb_image.h lib/libz.so.1 lib/libdeflate.so.0 lib/libstb.so.0
           src/googletest/CMakeLists.txt)
  if(NOT EXISTS ${_v}/${_f})
    message(FATAL_ERROR "GRADLENS_VENDOR_DIR=${_v} has no ${_f}; make it with scripts/vendor-deps.sh DIR on a "
                        "Debian machine with the set-up's packages (scripts/setup.sh)")
  endif()
endforeach()

add_library(CLI11::CLI11 INTERFACE IMPORTED)
set_target_properties(CLI11::CLI11 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${_v}/include)
add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
set_target_properties(nlohmann_json::nlohmann_json PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${_v}/include)
# fmt header-only: no libfmt built with another C++ ABI setting to link.
add_library(fmt::fmt INTERFACE IMPORTED)
set_target_properties(fmt::fmt PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${_v}/include
                                          INTERFACE_COMPILE_DEFINITIONS FMT_HEADER_ONLY=1)
add_library(Eigen3::Eigen INTERFACE IMPORTED)
set_target_properties(Eigen3::Eigen PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${_v}/include/eigen3)
# The C libraries (C ABI, glibc only) as Debian built them.
add_library(ZLIB::ZLIB SHARED IMPORTED)
set_target_properties(ZLIB::ZLIB PROPERTIES IMPORTED_LOCATION ${_v}/lib/libz.so.1
                                            INTERFACE_INCLUDE_DIRECTORIES ${_v}/include)
set(DEFLATE_LIBRARY ${_v}/lib/libdeflate.so.0)
set(DEFLATE_INCLUDE_DIR ${_v}/include)
set(STB_LIBRARY ${_v}/lib/libstb.so.0)
set(STB_INCLUDE_DIR ${_v}/include/stb)
include_directories(SYSTEM ${_v}/include)
