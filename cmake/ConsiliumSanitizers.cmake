# CONSILIUM_SANITIZE=address,undefined builds everything (host, plugins, tests) instrumented.
if(CONSILIUM_SANITIZE)
  set(_san "-fsanitize=${CONSILIUM_SANITIZE}" -fno-omit-frame-pointer)
  if(CONSILIUM_SANITIZE MATCHES "undefined")
    list(APPEND _san -fno-sanitize-recover=undefined)
  endif()
  # GCC documents that -fsanitize makes -Wmaybe-uninitialized report false positives; the
  # Release build keeps the warning.
  list(APPEND _san $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)
  # At -O1 with ASan, GCC 12 inlines Boost.Asio's coroutine frame allocator (aligned_alloc) and
  # its matching operator delete (which calls free) and then wrongly reports a mismatch.
  list(APPEND _san $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete>)
  add_compile_options(${_san})
  add_link_options("-fsanitize=${CONSILIUM_SANITIZE}")
  message(STATUS "Consilium: sanitizers ${CONSILIUM_SANITIZE}")
endif()
