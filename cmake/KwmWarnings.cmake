# Warning flags for every KWM target (kwm_set_warnings) and the sanitizer switch.
set(KWM_CXX_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
    -Woverloaded-virtual -Wnull-dereference -Wdouble-promotion -Wimplicit-fallthrough)
# GCC 12 reports -Wrestrict on inlined std::string concatenation (GCC bug 105329, fixed in 13):
# a false positive in libstdc++, not in our code.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  list(APPEND KWM_CXX_WARNINGS -Wno-restrict)
endif()
# GCC 13's -Wdangling-reference flags every `const T& x = f(args)` where f returns a reference
# into one of its arguments (GCC bug 107532): false positives for our state/option lookups.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 13)
  list(APPEND KWM_CXX_WARNINGS -Wno-dangling-reference)
endif()
if(KWM_WARNINGS_AS_ERRORS)
  list(APPEND KWM_CXX_WARNINGS -Werror)
endif()

if(KWM_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

function(kwm_set_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${KWM_CXX_WARNINGS}>)
  if(KWM_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>)
  endif()
endfunction()
