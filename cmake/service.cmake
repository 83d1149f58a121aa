# ab_service(<name> SOURCES ...): builds aetherbus-<name> linked to ab-common,
# the one way a service or tool binary is made (fluent-bit's FLB_PLUGIN).
function(ab_service name)
  cmake_parse_arguments(S "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(aetherbus-${name} ${S_SOURCES})
  target_link_libraries(aetherbus-${name} PRIVATE ab-common ${S_LIBS})
  target_include_directories(aetherbus-${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  install(TARGETS aetherbus-${name} RUNTIME DESTINATION bin)
endfunction()
