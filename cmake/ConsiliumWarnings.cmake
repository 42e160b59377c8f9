# The one list of warnings every target of ours builds with. Warnings are errors.
#
# Two exceptions, both GCC 12 false positives inside libstdc++'s std::string at -O2/-O3
# (GCC bugs 105329 and 105651: "specified bound ... exceeds maximum object size" on appends
# that cannot overflow): -Wstringop-overflow and -Wrestrict stay off. Clang builds keep them.
function(consilium_set_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Werror
    -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual
    -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough
    $<$<CXX_COMPILER_ID:GNU>:-Wno-stringop-overflow -Wno-restrict>)
endfunction()
