# Every third-party dependency, found once, by find_package (pkg-config only where Debian ships
# no CMake package). launch/setup.sh installs them on Debian/Ubuntu.
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(yaml-cpp REQUIRED)
find_package(CLI11 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(Threads REQUIRED)
find_package(MPI COMPONENTS CXX)

# HDF5: ask for the serial flavour explicitly (DATA.md: a parallel/serial mix links badly).
set(HDF5_PREFER_PARALLEL OFF)
find_package(HDF5 COMPONENTS C)

# SentencePiece ships no CMake package, only pkg-config. Optional here: core/text (kwm_text, the
# BPE tokenizer) stops with a clear message when it is missing; nothing else needs it.
find_package(PkgConfig)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(SENTENCEPIECE IMPORTED_TARGET sentencepiece)
endif()

if(KWM_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(KWM_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# yaml-cpp 0.8 exports yaml-cpp::yaml-cpp, Debian 12's 0.7 exports plain yaml-cpp.
if(TARGET yaml-cpp::yaml-cpp)
  set(KWM_YAML_TARGET yaml-cpp::yaml-cpp)
else()
  set(KWM_YAML_TARGET yaml-cpp)
endif()
