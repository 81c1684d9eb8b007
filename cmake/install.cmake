# Install: the executable, its busybox-style symlinks, README and LICENSE.

include(GNUInstallDirs)

install(TARGETS kawipiko RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(applet IN ITEMS kawipiko-archiver kawipiko-server)
  install(
    CODE "file(CREATE_LINK kawipiko \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/${applet}\" SYMBOLIC)"
  )
endforeach()
install(FILES README.rst LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
