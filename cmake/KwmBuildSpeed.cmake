# Build-time switches for CI (docs/ci.md): precompiled headers shared by every C++ target.
#
# KWM_PRECOMPILED_HEADERS=ON (the ci-* presets) precompiles Eigen/Dense and the common standard
# headers once per build (kwm_pch_core) and gtest + Eigen once more for the test executables
# (kwm_pch_tests); every other C++ target reuses one of the two (REUSE_FROM), so no TU parses
# Eigen or gtest again (about 2 s of CPU each, 200 TUs per build). GCC only: clang rejects a PCH
# built with other flags (the fuzzers add their own). GCC checks that a reused PCH fits
# (CMake adds -Winvalid-pch, an error under -Werror), so the donors define no macros of their own.
# Unity builds are CMake's own CMAKE_UNITY_BUILD, set by the presets.
option(KWM_PRECOMPILED_HEADERS "Precompile Eigen, gtest and the standard headers (GCC)" OFF)

set(KWM_PCH_CORE_HEADERS <Eigen/Dense> <algorithm> <array> <cmath> <cstddef> <cstdint>
    <functional> <limits> <map> <memory> <optional> <stdexcept> <string> <string_view> <utility>
    <vector>)
set(KWM_PCH_TEST_HEADERS <gtest/gtest.h> ${KWM_PCH_CORE_HEADERS} <random>)

# Every build-system target under dir, recursively.
function(kwm_collect_targets dir out)
  get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    kwm_collect_targets("${sub}" sub_targets)
    list(APPEND targets ${sub_targets})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

# Called once at the end of the top-level CMakeLists, after every target exists.
function(kwm_use_precompiled_headers)
  if(NOT KWM_PRECOMPILED_HEADERS)
    return()
  endif()
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    message(STATUS "KWM: precompiled headers are GCC only; off for ${CMAKE_CXX_COMPILER_ID}")
    return()
  endif()
  kwm_collect_targets("${PROJECT_SOURCE_DIR}" targets)

  set(anchor "${PROJECT_BINARY_DIR}/kwm_pch_anchor.cpp")
  file(CONFIGURE OUTPUT "${anchor}" CONTENT "// Holds the shared precompiled headers.\n")
  add_library(kwm_pch_core STATIC "${anchor}")
  target_link_libraries(kwm_pch_core PRIVATE Eigen3::Eigen)
  target_precompile_headers(kwm_pch_core PRIVATE ${KWM_PCH_CORE_HEADERS})
  kwm_set_warnings(kwm_pch_core)
  if(TARGET GTest::gtest)
    add_library(kwm_pch_tests STATIC "${anchor}")
    target_link_libraries(kwm_pch_tests PRIVATE Eigen3::Eigen GTest::gtest)
    target_precompile_headers(kwm_pch_tests PRIVATE ${KWM_PCH_TEST_HEADERS})
    kwm_set_warnings(kwm_pch_tests)
  endif()

  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    if(NOT type MATCHES "^(EXECUTABLE|STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY)$")
      continue()
    endif()
    # A target of its own (DISABLE_PRECOMPILE_HEADERS) or with its own code generation flags
    # (-march=native) cannot take the shared PCH.
    get_target_property(no_pch ${target} DISABLE_PRECOMPILE_HEADERS)
    get_target_property(options ${target} COMPILE_OPTIONS)
    if(no_pch OR "${options}" MATCHES "-march=|-mtune=|-fPIC|-fpic")
      continue()
    endif()
    get_target_property(sources ${target} SOURCES)
    set(cuda_sources ${sources})
    list(FILTER cuda_sources INCLUDE REGEX "\\.cu$")
    list(FILTER sources INCLUDE REGEX "\\.(cpp|cc|cxx)$")
    if(NOT sources OR cuda_sources)
      continue()  # C-only, or with CUDA sources (nvcc takes no GCC PCH)
    endif()
    get_target_property(libs ${target} LINK_LIBRARIES)
    if(TARGET kwm_pch_tests AND "GTest::gtest" IN_LIST libs)
      set(donor kwm_pch_tests)
    else()
      set(donor kwm_pch_core)
    endif()
    set_target_properties(${target} PROPERTIES PRECOMPILE_HEADERS_REUSE_FROM ${donor})
  endforeach()
endfunction()
