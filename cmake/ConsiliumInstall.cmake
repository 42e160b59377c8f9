# `cmake --install` installs the SDK headers and a CMake package, so that an out-of-tree plugin
# builds with find_package(Consilium) and consilium_add_plugin(). tests/consumer/ proves it.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/engine/include/consilium
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS consilium_sdk EXPORT ConsiliumTargets)
install(EXPORT ConsiliumTargets NAMESPACE consilium::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Consilium)
configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/ConsiliumConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/ConsiliumConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Consilium)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ConsiliumConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/ConsiliumConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/ConsiliumConfigVersion.cmake
  ${CMAKE_CURRENT_SOURCE_DIR}/cmake/ConsiliumPlugin.cmake
  ${CMAKE_CURRENT_SOURCE_DIR}/cmake/ConsiliumWarnings.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Consilium)
install(TARGETS consilium RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
