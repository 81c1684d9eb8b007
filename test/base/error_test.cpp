#include "base/error.hpp"

#include <catch2/catch.hpp>
#include <cerrno>

using kawipiko::base::quote;

TEST_CASE("quote wraps a name in single quotes and escapes control bytes", "[base]") {
  CHECK(quote("site.cdb") == "'site.cdb'");
  CHECK(quote("a\nb") == "'a\\x0ab'");
  CHECK(quote(std::string_view("\x7f", 1)) == "'\\x7f'");
  CHECK(quote("caf\xc3\xa9 menu") == "'caf\xc3\xa9 menu'");
}

TEST_CASE("throw_errno names the operation, the object and the system reason", "[base]") {
  try {
    kawipiko::base::throw_errno(ENOENT, "cannot open", "x.cdb");
    FAIL("no throw");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENOENT);
    CHECK(std::string(e.what()).rfind("cannot open 'x.cdb'", 0) == 0);
  }
}
