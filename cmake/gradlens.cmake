# Helpers shared by the library, the CLI, the tests and the benchmarks.

set(GRADLENS_SRC_DIR ${CMAKE_CURRENT_SOURCE_DIR}/src)
set(GRADLENS_AREA_TARGETS "")

# A tiny static library that carries LibTorch's flags and, with
# GRADLENS_USE_PCH, owns the precompiled header that every other target
# reuses with REUSE_FROM (see CMakeLists.txt for why it is off by default).
function(gradlens_pch_target)
  add_library(gradlens_pch STATIC ${GRADLENS_SRC_DIR}/gradlens/pch.cpp)
  target_link_libraries(gradlens_pch PUBLIC ${TORCH_LIBRARIES})
  target_include_directories(gradlens_pch PUBLIC ${GRADLENS_SRC_DIR} ${STB_INCLUDE_DIR})
  target_compile_options(gradlens_pch PUBLIC -Wall -Wextra -Wno-unused-parameter)
  if(GRADLENS_USE_PCH)
    target_precompile_headers(gradlens_pch PRIVATE ${GRADLENS_SRC_DIR}/gradlens/pch.h)
  endif()
endfunction()

function(gradlens_use_pch target)
  if(GRADLENS_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM gradlens_pch)
  endif()
endfunction()

# gradlens_area(<name> DEPS <areas...>): a static library gradlens_<name> from
# src/gradlens/<name>/*.cpp. Areas without sources are skipped.
function(gradlens_area name)
  cmake_parse_arguments(A "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${GRADLENS_SRC_DIR}/gradlens/${name}/*.cpp)
  if(NOT srcs)
    return()
  endif()
  add_library(gradlens_${name} STATIC ${srcs})
  target_link_libraries(gradlens_${name} PUBLIC gradlens_pch Threads::Threads
                        nlohmann_json::nlohmann_json fmt::fmt ZLIB::ZLIB ${STB_LIBRARY}
                        ${DEFLATE_LIBRARY})
  foreach(dep IN LISTS A_DEPS)
    if(TARGET gradlens_${dep})
      target_link_libraries(gradlens_${name} PUBLIC gradlens_${dep})
    endif()
  endforeach()
  gradlens_use_pch(gradlens_${name})
  set(GRADLENS_AREA_TARGETS ${GRADLENS_AREA_TARGETS} gradlens_${name} PARENT_SCOPE)
endfunction()
