# The graph viewer (issue 8), included at the end of the top-level CMakeLists.txt:
#  - embeds src/export/viewer/ (viewer.html + .css + .js) into the library as byte arrays
#    (cmake/embed.cmake writes generated/viewer_template.h, included by src/export/html.c,
#    and generated/viewer_template.html, the bare template to open while editing);
#  - links cJSON into the CLI (attrgraph show reads graph JSON) and the CLI progress bar
#    (tools/progress.c) into its unit test;
#  - registers the headless-Chromium tests (tests/browser/, label "browser") when chromium,
#    node and npm are found.
set(AG_VIEWER_DIR ${PROJECT_SOURCE_DIR}/src/export/viewer)
set(AG_GENERATED_DIR ${PROJECT_BINARY_DIR}/generated)
file(MAKE_DIRECTORY ${AG_GENERATED_DIR})
add_custom_command(
  OUTPUT ${AG_GENERATED_DIR}/viewer_template.h ${AG_GENERATED_DIR}/viewer_template.html
  COMMAND ${CMAKE_COMMAND} -DVIEWER_DIR=${AG_VIEWER_DIR}
          -DOUT_HEADER=${AG_GENERATED_DIR}/viewer_template.h
          -DOUT_HTML=${AG_GENERATED_DIR}/viewer_template.html
          -P ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
  DEPENDS ${AG_VIEWER_DIR}/viewer.html ${AG_VIEWER_DIR}/viewer.css ${AG_VIEWER_DIR}/viewer.js
          ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
  COMMENT "Embedding the graph viewer (src/export/viewer)"
  VERBATIM)
target_sources(attrgraph_obj PRIVATE ${AG_GENERATED_DIR}/viewer_template.h)
target_include_directories(attrgraph_obj PRIVATE ${AG_GENERATED_DIR})

if(AG_BUILD_TOOLS AND TARGET attrgraph_cli)
  target_link_libraries(attrgraph_cli PRIVATE PkgConfig::CJSON)
endif()

if(AG_BUILD_TESTS)
  if(TARGET check_progress)
    target_sources(check_progress PRIVATE ${PROJECT_SOURCE_DIR}/tools/progress.c)
    target_include_directories(check_progress PRIVATE ${PROJECT_SOURCE_DIR}/tools)
  endif()
  if(AG_BUILD_TOOLS)
    add_subdirectory(${PROJECT_SOURCE_DIR}/tests/browser ${PROJECT_BINARY_DIR}/tests/browser)
  endif()
endif()
