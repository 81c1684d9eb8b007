# Install: the executable, its busybox-style symlinks, README and LICENSE, and the systemd units
# (with an example of their settings).

include(GNUInstallDirs)

install(TARGETS kawipiko RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(applet IN ITEMS kawipiko-archiver kawipiko-server)
  install(
    CODE "file(CREATE_LINK kawipiko \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/${applet}\" SYMBOLIC)"
  )
endforeach()
install(FILES README.rst LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
# Where Debian keeps the units of packages: lib/systemd/system under the prefix, whatever
# CMAKE_INSTALL_LIBDIR says (a multiarch lib/x86_64-linux-gnu on Debian). ExecStart= names
# /usr/bin/kawipiko, the binary of a --prefix /usr install.
install(FILES app/deploy/systemd/kawipiko.service app/deploy/systemd/kawipiko.socket
              app/deploy/systemd/kawipiko-tls.socket DESTINATION lib/systemd/system)
install(FILES app/deploy/systemd/kawipiko.default app/deploy/haproxy.cfg
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
