#include "http/target.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>

using kawipiko::http::encode_path;
using kawipiko::http::normalize_target;
using kawipiko::http::target_error;

namespace {

struct normalized {
  target_error error;
  std::string path;
};

normalized normalize(std::string_view target, std::size_t buffer_size = 8192) {
  std::string buffer(buffer_size, '\xff');
  std::size_t size = 99;
  const auto error = normalize_target(target, std::span<char>(buffer.data(), buffer.size()), size);
  if (error != target_error::none) {
    CHECK(size == 0);
    return {error, {}};
  }
  REQUIRE(size <= buffer_size);
  return {error, buffer.substr(0, size)};
}

struct path_case {
  std::string_view target;
  std::string_view path;
};

struct error_case {
  std::string_view target;
  target_error error;
};

}  // namespace

TEST_CASE("normalize_target turns valid targets into canonical archive paths", "[http][target]") {
  constexpr path_case cases[] = {
      {"/", "/"},
      {"/index.html", "/index.html"},
      {"/a/b?q=1", "/a/b"},
      {"/a/b?", "/a/b"},
      {"/a#frag", "/a"},
      {"/a?q#frag", "/a"},
      {"/a/../../b", "/b"},
      {"/../..", "/"},
      {"/./", "/"},
      {"/.", "/"},
      {"/..", "/"},
      {"/a/.", "/a/"},
      {"/a/..", "/"},
      {"/a/b/..", "/a/"},
      {"/a/./b", "/a/b"},
      {"//a//b/", "/a/b/"},
      {"///", "/"},
      {"/a/", "/a/"},
      {"/a/%2e%2e/b", "/b"},
      {"/a/%2E%2e/b", "/b"},
      {"/a/.%2e", "/"},
      {"/a%2Fb", "/a/b"},
      {"/a%2f..%2fb", "/b"},
      {"/a%20b", "/a b"},
      {"/%41%62", "/Ab"},
      {"/caf%C3%A9", "/caf\xc3\xa9"},
      {"/a%3Fb%23c", "/a?b#c"},
      {"/a%25b", "/a%b"},
      {"/...", "/..."},
      {"/..a/.b/a..", "/..a/.b/a.."},
      {"/ab/cd/../e", "/ab/e"},
      {"/abc/../de", "/de"},
      {"/a|b^c[d]", "/a|b^c[d]"},
      {"/a?q=%zz{|}", "/a"},
      {"http://h", "/"},
      {"http://h?x", "/"},
      {"http://h#x", "/"},
      {"HTTP://h/x?y", "/x"},
      {"https://example.com:8443/a/../b/", "/b/"},
      {"HtTpS://h/%7E", "/~"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.target);
    const auto result = normalize(c.target);
    CHECK(result.error == target_error::none);
    CHECK(result.path == c.path);
  }
}

TEST_CASE("normalize_target refuses malformed and hostile targets", "[http][target]") {
  constexpr error_case cases[] = {
      {"", target_error::empty},
      {"*", target_error::bad_form},
      {"host:80", target_error::bad_form},
      {"a/b", target_error::bad_form},
      {"ftp://h/a", target_error::bad_form},
      {"http:/a", target_error::bad_form},
      {"http:///a", target_error::bad_form},
      {"httpx://h/a", target_error::bad_form},
      {"/%", target_error::bad_escape},
      {"/%4", target_error::bad_escape},
      {"/%zz", target_error::bad_escape},
      {"/%4g", target_error::bad_escape},
      {"/a%?b", target_error::bad_escape},
      {"/%00", target_error::nul},
      {"/a%00/../b", target_error::nul},
      {std::string_view("/a\0b", 4), target_error::nul},
      {"/\x01", target_error::control},
      {"/%01", target_error::control},
      {"/%1F", target_error::control},
      {"/%7f", target_error::control},
      {"/a\x7f", target_error::control},
      {"/a?\x01", target_error::control},
      {std::string_view("/a?\0", 4), target_error::nul},
      {"/a#\n", target_error::control},
      {"http://h\r/", target_error::control},
      {"/\x80", target_error::bad_form},
      {"/caf\xc3\xa9", target_error::bad_form},
      {"/a b", target_error::bad_form},
      {"/a\"b", target_error::bad_form},
      {"/<x>", target_error::bad_form},
      {"/a\\b", target_error::bad_form},
      {"/a`b", target_error::bad_form},
      {"/{a}", target_error::bad_form},
      {"/a?b c", target_error::bad_form},
      {"http://h h/", target_error::bad_form},
      // The first offending byte decides.
      {"/%zz\x01", target_error::bad_escape},
      {"/\x01%zz", target_error::control},
  };
  for (const auto& c : cases) {
    CAPTURE(c.target);
    CHECK(normalize(c.target).error == c.error);
  }
}

TEST_CASE("normalize_target reports too_long when the caller's buffer is too small",
          "[http][target]") {
  const std::string long_target = "/" + std::string(100, 'a') + "/b";
  CHECK(normalize(long_target, 10).error == target_error::too_long);
  CHECK(normalize(long_target, 0).error == target_error::too_long);
  CHECK(normalize("/", 0).error == target_error::too_long);
  CHECK(normalize("http://h", 0).error == target_error::too_long);

  // Exactly the size of the result fits; one byte less does not.
  CHECK(normalize("/abc/", 5).path == "/abc/");
  CHECK(normalize("/abc/", 4).error == target_error::too_long);
  CHECK(normalize("/abc", 4).path == "/abc");
  CHECK(normalize("/abc", 3).error == target_error::too_long);
  CHECK(normalize("http://h", 1).path == "/");

  // "." and ".." segments need no room of their own.
  CHECK(normalize("/a/../..", 2).path == "/");
  CHECK(normalize("/a/./../../.", 2).path == "/");

  // A buffer as long as the target always suffices.
  constexpr std::string_view targets[] = {"/",     "/.",    "/a/.",     "/a/..",         "//",
                                          "/%2e/", "/a%2F", "http://h", "/x/y/z/../../", "/%41"};
  for (const auto target : targets) {
    CAPTURE(target);
    CHECK(normalize(target, target.size()).error == target_error::none);
  }
}

TEST_CASE("normalize_target tells each kind of refusal apart", "[http][target]") {
  // One target per error: the caller can log or count refusals by kind.
  CHECK(normalize("").error == target_error::empty);
  CHECK(normalize("*").error == target_error::bad_form);
  CHECK(normalize("/%zz").error == target_error::bad_escape);
  CHECK(normalize("/%00").error == target_error::nul);
  CHECK(normalize("/%01").error == target_error::control);
  CHECK(normalize("/abc", 2).error == target_error::too_long);
  CHECK(normalize("/abc").error == target_error::none);
}

TEST_CASE("encode_path percent-encodes what is unsafe in a Location header", "[http][target]") {
  constexpr path_case cases[] = {
      {"/", "/"},
      {"/a/b.html", "/a/b.html"},
      {"/A-Z_a.z~0/9", "/A-Z_a.z~0/9"},
      {"/!$&'()*+=:@", "/!$&'()*+=:@"},
      {"/a b", "/a%20b"},
      {"/100%", "/100%25"},
      {"/a?b#c", "/a%3Fb%23c"},
      {"/\"<>\\^`{|}", "/%22%3C%3E%5C%5E%60%7B%7C%7D"},
      {"/[x],;", "/%5Bx%5D%2C%3B"},
      {"/caf\xc3\xa9", "/caf%C3%A9"},
      {"/\x01\x7f\xff", "/%01%7F%FF"},
      {"", ""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.path);
    CHECK(encode_path(c.target) == c.path);
  }
}

TEST_CASE("is_kept_by_encode_path names exactly the bytes encode_path leaves raw",
          "[http][target]") {
  for (unsigned c = 0; c < 256; ++c) {
    const std::string byte(1, static_cast<char>(c));
    INFO(c);
    CHECK(kawipiko::http::is_kept_by_encode_path(static_cast<unsigned char>(c)) ==
          (encode_path(byte) == byte));
  }
}

TEST_CASE("an encoded path normalizes back to the original path", "[http][target]") {
  constexpr std::string_view paths[] = {"/a b/c", "/caf\xc3\xa9/x?y#z", "/100%/[1]", "/a,b;c"};
  for (const auto path : paths) {
    CAPTURE(path);
    const auto result = normalize(encode_path(path));
    CHECK(result.error == target_error::none);
    CHECK(result.path == path);
  }
}
