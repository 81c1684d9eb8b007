# kawipiko_target_defaults(<target>): the one place that sets the language level, warnings,
# warnings-as-errors and sanitizers, PRIVATE to the target.

function(kawipiko_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
  target_compile_options(
    ${target}
    PRIVATE -Wall
            -Wextra
            -Wpedantic
            -Wshadow
            -Wconversion
            -Wsign-conversion
            -Wnon-virtual-dtor
            -Wold-style-cast
            -Wcast-align
            -Woverloaded-virtual
            -Wimplicit-fallthrough)
  if(KAWIPIKO_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(KAWIPIKO_SANITIZE)
    target_compile_options(${target} PUBLIC -fsanitize=${KAWIPIKO_SANITIZE}
                                            -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PUBLIC -fsanitize=${KAWIPIKO_SANITIZE})
  endif()
endfunction()
