# consilium_add_plugin(<name> KIND provider|transport|storage SOURCES ... [LIBRARIES ...])
#
# Makes a plugin: a MODULE library built with hidden visibility that links against no host
# symbol, only the header-only SDK (consilium::sdk). Its file lands in CONSILIUM_PLUGIN_DIR
# (build/plugins/ in this tree) as <kind>_<name>.so. Installed by ConsiliumConfig.cmake too, so
# out-of-tree plugins use the same function after find_package(Consilium).
function(consilium_add_plugin name)
  cmake_parse_arguments(ARG "" "KIND;OUTPUT_DIRECTORY" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_KIND MATCHES "^(provider|transport|storage)$")
    message(FATAL_ERROR "consilium_add_plugin(${name}): KIND must be provider, transport or storage")
  endif()
  set(target ${ARG_KIND}_${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE consilium::sdk ${ARG_LIBRARIES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${ARG_KIND}_${name}
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  elseif(CONSILIUM_PLUGIN_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CONSILIUM_PLUGIN_DIR})
  endif()
  # A plugin must resolve every symbol itself: the host exports nothing to it.
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
  if(COMMAND consilium_set_warnings)
    consilium_set_warnings(${target})
  endif()
endfunction()
