# ab_service(<name> SOURCES ...): builds aetherbus-<name> linked to ab-common,
# the one way a service or tool binary is made (fluent-bit's FLB_PLUGIN).
# With LIBRARY, every source but main.c goes into the static library
# ab-<name>, so unit tests (tests/unit/test_<name>_*.c) call the service's
# modules directly. Not for the devbroker: its interposed bind()/accept()
# are referenced by nobody and would not be pulled out of an archive.
function(ab_service name)
  cmake_parse_arguments(S "LIBRARY" "" "SOURCES;LIBS" ${ARGN})
  set(lib ${S_SOURCES})
  list(FILTER lib EXCLUDE REGEX "(^|/)main\\.c$")
  set(main ${S_SOURCES})
  list(FILTER main INCLUDE REGEX "(^|/)main\\.c$")
  if(S_LIBRARY AND lib)
    add_library(ab-${name} STATIC ${lib})
    target_link_libraries(ab-${name} PUBLIC ab-common ${S_LIBS})
    target_include_directories(ab-${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
    add_executable(aetherbus-${name} ${main})
    target_link_libraries(aetherbus-${name} PRIVATE ab-${name})
  else()
    add_executable(aetherbus-${name} ${S_SOURCES})
    target_link_libraries(aetherbus-${name} PRIVATE ab-common ${S_LIBS})
    target_include_directories(aetherbus-${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  install(TARGETS aetherbus-${name} RUNTIME DESTINATION bin)
endfunction()
