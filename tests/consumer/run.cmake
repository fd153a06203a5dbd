# cmake -P script: install metagrad from BUILD_DIR into a prefix under WORK_DIR, then configure, build and run
# the consumer against it with find_package, and once more with add_subdirectory(SOURCE_DIR).
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
if(NOT EXISTS "${prefix}/include/metagrad/metagrad.hpp")
  message(FATAL_ERROR "install did not place metagrad/metagrad.hpp under ${prefix}/include")
endif()

set(consumer "${SOURCE_DIR}/tests/consumer")
run("${CMAKE_COMMAND}" -S "${consumer}" -B "${WORK_DIR}/installed" -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_PREFIX_PATH=${prefix}")
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/installed")
run("${WORK_DIR}/installed/consumer")

run("${CMAKE_COMMAND}" -S "${consumer}" -B "${WORK_DIR}/subdirectory" -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release
    "-DMETAGRAD_SOURCE_DIR=${SOURCE_DIR}")
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/subdirectory")
run("${WORK_DIR}/subdirectory/consumer")
message(STATUS "consumer built and ran against the installed package and as a subdirectory")
