#pragma once
// --user and --group: the account a serving process runs as once it listens and has its archives
// and certificates open, looked up at start, and the drop to it (setgroups, setgid, setuid),
// checked to have held. The process keeps the user's supplementary groups, as nginx and su do
// (initgroups), so that a membership such as Debian's ssl-cert still opens the private key on a
// reload.

#include <sys/types.h>

#include <string>
#include <vector>

namespace kawipiko::serve {

struct identity {
  std::string user;  // the name, for messages
  uid_t uid = 0;
  gid_t gid = 0;              // --group's, else the user's primary group
  std::vector<gid_t> groups;  // the user's groups in the group database, `gid` among them
};

// Looks `user` up, and `group` (the user's primary group when empty), in the system's databases
// (NSS). Throws base::invalid_option naming the flag and the name when there is no such user or
// group (or the lookup fails).
[[nodiscard]] identity find_identity(const std::string& user, const std::string& group);

// Whether this process may become someone else: it holds CAP_SETUID and CAP_SETGID (root does,
// unless its capabilities were taken away). Throws std::runtime_error naming `who` if not, so that
// a server asked to drop refuses before it opens anything.
void check_can_become(const identity& who);

// Drops to `who` for good: setgroups, setgid, setuid; then checks that the real, effective and
// saved ids all are who's and, unless who is root, that setuid(0) and setgid(0) now fail. Throws
// std::runtime_error (one line naming the user and the step) if a step fails or the check does
// not hold: the caller must not go on. Call it while the process has a single thread.
void become(const identity& who);

}  // namespace kawipiko::serve
