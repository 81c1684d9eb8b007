#include "serve/privileges.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

#include "base/error.hpp"
#include "support/forked_child.hpp"
#include "support/skip.hpp"

namespace serve = kawipiko::serve;
using kawipiko::base::invalid_option;
using kawipiko::test::expect;
using kawipiko::test::in_child;

namespace {

constexpr uid_t nobody = 65534;  // Debian's nobody, and its group nogroup

bool has(const std::vector<gid_t>& groups, gid_t g) {
  return std::find(groups.begin(), groups.end(), g) != groups.end();
}

// Clears CAP_SETUID and CAP_SETGID from the calling process's effective set, as a root whose
// capabilities were taken away would have it.
bool drop_set_id_capabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  data[0].effective &= ~((1u << CAP_SETUID) | (1u << CAP_SETGID));
  return ::syscall(SYS_capset, &header, data) == 0;
}

}  // namespace

TEST_CASE("a user is found with their primary group and their groups", "[serve]") {
  const auto who = serve::find_identity("nobody", "");
  CHECK(who.user == "nobody");
  CHECK(who.uid == nobody);
  CHECK(who.gid == nobody);
  CHECK(has(who.groups, nobody));
  CHECK(std::is_sorted(who.groups.begin(), who.groups.end()));
  const auto root = serve::find_identity("root", "");
  CHECK(root.uid == 0);
  CHECK(root.gid == 0);
  CHECK(has(root.groups, 0));
}

TEST_CASE("a --group takes the place of the user's primary group", "[serve]") {
  const auto who = serve::find_identity("nobody", "root");
  CHECK(who.uid == nobody);
  CHECK(who.gid == 0);
  CHECK(has(who.groups, 0));
}

TEST_CASE("an unknown user or group is refused naming it", "[serve]") {
  CHECK_THROWS_MATCHES(serve::find_identity("kawipiko-no-such-user", ""), invalid_option,
                       Catch::Message("--user 'kawipiko-no-such-user': no such user"));
  CHECK_THROWS_MATCHES(serve::find_identity("nobody", "kawipiko-no-such-group"), invalid_option,
                       Catch::Message("--group 'kawipiko-no-such-group': no such group"));
}

TEST_CASE("become drops every id and the groups for good", "[serve]") {
  if (::geteuid() != 0) KAWIPIKO_SKIP("needs root to drop from");
  const auto who = serve::find_identity("nobody", "");
  const auto outcome = in_child([&] {
    serve::become(who);
    uid_t r = 0, e = 0, s = 0;
    gid_t rg = 0, eg = 0, sg = 0;
    ::getresuid(&r, &e, &s);
    ::getresgid(&rg, &eg, &sg);
    gid_t groups[8];
    const int count = ::getgroups(8, groups);
    bool held = expect(r == nobody && e == nobody && s == nobody, "every uid is nobody's");
    held &= expect(rg == nobody && eg == nobody && sg == nobody, "every gid is nogroup");
    held &= expect(count == 1 && groups[0] == nobody, "the groups are nobody's: nogroup");
    held &= expect(::setuid(0) != 0, "no way back to root");
    return held ? 0 : 1;
  });
  INFO(outcome.errors);
  CHECK(outcome.exit_code == 0);
}

TEST_CASE("a process that may not change its ids is refused before and by the drop", "[serve]") {
  if (::geteuid() != 0) KAWIPIKO_SKIP("needs root to take the capabilities from");
  const auto who = serve::find_identity("nobody", "");
  const auto outcome = in_child([&] {
    if (!expect(drop_set_id_capabilities(), "capset")) return 2;
    try {
      serve::check_can_become(who);
      return 3;
    } catch (const std::runtime_error& e) {
      std::fprintf(stderr, "%s\n", e.what());
    }
    try {
      serve::become(who);
      return 4;
    } catch (const std::runtime_error& e) {
      std::fprintf(stderr, "%s\n", e.what());
    }
    return ::getuid() == 0 ? 0 : 5;  // nothing changed
  });
  CHECK(outcome.exit_code == 0);
  CHECK(outcome.errors ==
        "cannot run as user 'nobody': this process may not change its user and group (it lacks "
        "CAP_SETUID or CAP_SETGID: start it as root)\n"
        "cannot run as user 'nobody': setgroups failed: Operation not permitted\n");
}

TEST_CASE("root may become another user", "[serve]") {
  if (::geteuid() != 0) KAWIPIKO_SKIP("needs root");
  CHECK_NOTHROW(serve::check_can_become(serve::find_identity("nobody", "")));
}
