#include "serve/privileges.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "base/error.hpp"

namespace kawipiko::serve {

namespace {

constexpr std::size_t max_entry_buffer = 1 << 20;

// getpwnam_r or getgrnam_r into `entry`, the buffer doubled until the entry fits. Returns the
// lookup's error (0 with `found` null: no such name).
template <class Entry, class Lookup>
int look_up(Lookup lookup, const std::string& name, Entry& entry, Entry*& found) {
  std::vector<char> buffer(1024);
  for (;;) {
    const int error = lookup(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (error != ERANGE || buffer.size() >= max_entry_buffer) return error;
    buffer.resize(buffer.size() * 2);
  }
}

// What getpwnam_r and getgrnam_r may return for a name that is not there (POSIX lists these).
bool means_missing(int error) {
  return error == 0 || error == ENOENT || error == ESRCH || error == EBADF || error == EPERM;
}

[[noreturn]] void refuse_name(std::string_view flag, const std::string& name, int error,
                              std::string_view missing) {
  const std::string which = std::string(flag) + " " + base::quote(name);
  if (means_missing(error)) throw base::invalid_option(which + ": " + std::string(missing));
  throw base::invalid_option("cannot look up " + which + ": " + std::strerror(error));
}

std::vector<gid_t> groups_of(const std::string& user, gid_t gid) {
  int count = 16;
  std::vector<gid_t> groups;
  for (;;) {
    groups.resize(static_cast<std::size_t>(count));
    if (::getgrouplist(user.c_str(), gid, groups.data(), &count) >= 0) break;
    count = std::max(count, static_cast<int>(groups.size()) * 2);
  }
  groups.resize(static_cast<std::size_t>(count));
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  return groups;
}

[[noreturn]] void refuse_drop(const identity& who, const std::string& why) {
  throw std::runtime_error("cannot run as user " + base::quote(who.user) + ": " + why);
}

[[noreturn]] void refuse_step(const identity& who, const char* step) {
  refuse_drop(who, std::string(step) + " failed: " + std::strerror(errno));
}

// The drop held: every id is who's, the groups are who's, and there is no way back to root.
void check_dropped(const identity& who) {
  uid_t real = 0, effective = 0, saved = 0;
  gid_t real_group = 0, effective_group = 0, saved_group = 0;
  if (::getresuid(&real, &effective, &saved) != 0 ||
      ::getresgid(&real_group, &effective_group, &saved_group) != 0) {
    refuse_step(who, "getresuid");
  }
  if (real != who.uid || effective != who.uid || saved != who.uid || real_group != who.gid ||
      effective_group != who.gid || saved_group != who.gid) {
    refuse_drop(who, "the user and group ids did not all change");
  }
  std::vector<gid_t> groups(static_cast<std::size_t>(std::max(::getgroups(0, nullptr), 0)));
  const int count = ::getgroups(static_cast<int>(groups.size()), groups.data());
  groups.resize(static_cast<std::size_t>(std::max(count, 0)));
  std::sort(groups.begin(), groups.end());
  if (count < 0 || groups != who.groups)
    refuse_drop(who, "the supplementary groups did not change");
  if ((who.uid != 0 && ::setuid(0) == 0) || (who.gid != 0 && ::setgid(0) == 0)) {
    refuse_drop(who, "it can still become root again");
  }
}

}  // namespace

identity find_identity(const std::string& user, const std::string& group) {
  passwd account{};
  passwd* found_user = nullptr;
  const int user_error = look_up(::getpwnam_r, user, account, found_user);
  if (found_user == nullptr) refuse_name("--user", user, user_error, "no such user");
  identity who{user, account.pw_uid, account.pw_gid, {}};
  if (!group.empty()) {
    struct group entry {};
    struct group* found_group = nullptr;
    const int group_error = look_up(::getgrnam_r, group, entry, found_group);
    if (found_group == nullptr) refuse_name("--group", group, group_error, "no such group");
    who.gid = entry.gr_gid;
  }
  who.groups = groups_of(user, who.gid);
  return who;
}

void check_can_become(const identity& who) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  if (::syscall(SYS_capget, &header, data) != 0) return;  // cannot tell: become() will say
  constexpr unsigned needed = (1u << CAP_SETUID) | (1u << CAP_SETGID);
  if ((data[0].effective & needed) != needed) {
    refuse_drop(who,
                "this process may not change its user and group (it lacks CAP_SETUID or "
                "CAP_SETGID: start it as root)");
  }
}

void become(const identity& who) {
  if (::setgroups(who.groups.size(), who.groups.data()) != 0) refuse_step(who, "setgroups");
  if (::setresgid(who.gid, who.gid, who.gid) != 0) refuse_step(who, "setgid");
  if (::setresuid(who.uid, who.uid, who.uid) != 0) refuse_step(who, "setuid");
  check_dropped(who);
}

}  // namespace kawipiko::serve
