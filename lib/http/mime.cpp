#include "http/mime.hpp"

#include <algorithm>
#include <array>
#include <cstddef>

#include "http/syntax.hpp"
#include "http/utf8.hpp"

namespace kawipiko::http {

namespace {

// The header values, each a static string so that content_type::value never dangles.
constexpr std::string_view text_plain = "text/plain; charset=utf-8";
constexpr std::string_view octet_stream = "application/octet-stream";

struct entry {
  std::string_view extension;  // lower case, without the dot
  std::string_view value;
  bool compressible;
};

// Sorted by extension (checked below) for the binary search. Texty types carry the charset here,
// so that the value is one static string. Compressible is false only for formats whose payload is
// already compressed (images, fonts, archives, audio, video, pdf, zip-based documents).
constexpr auto table = std::to_array<entry>({
    {"7z", "application/x-7z-compressed", false},
    {"aac", "audio/aac", false},
    {"apk", "application/vnd.android.package-archive", false},
    {"apng", "image/apng", false},
    {"atom", "application/atom+xml; charset=utf-8", true},
    {"avi", "video/x-msvideo", false},
    {"avif", "image/avif", false},
    {"bin", "application/octet-stream", true},
    {"bmp", "image/bmp", true},
    {"br", "application/x-brotli", false},
    {"bz2", "application/x-bzip2", false},
    {"c", "text/plain; charset=utf-8", true},
    {"cfg", "text/plain; charset=utf-8", true},
    {"cjs", "text/javascript; charset=utf-8", true},
    {"conf", "text/plain; charset=utf-8", true},
    {"cpp", "text/plain; charset=utf-8", true},
    {"css", "text/css; charset=utf-8", true},
    {"csv", "text/csv; charset=utf-8", true},
    {"cur", "image/x-icon", true},
    {"deb", "application/vnd.debian.binary-package", false},
    {"diff", "text/plain; charset=utf-8", true},
    {"dmg", "application/x-apple-diskimage", false},
    {"doc", "application/msword", true},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", false},
    {"eot", "application/vnd.ms-fontobject", true},
    {"epub", "application/epub+zip", false},
    {"exe", "application/vnd.microsoft.portable-executable", true},
    {"flac", "audio/flac", false},
    {"gif", "image/gif", false},
    {"go", "text/plain; charset=utf-8", true},
    {"gz", "application/gzip", false},
    {"h", "text/plain; charset=utf-8", true},
    {"heic", "image/heic", false},
    {"htm", "text/html; charset=utf-8", true},
    {"html", "text/html; charset=utf-8", true},
    {"ico", "image/x-icon", true},
    {"ics", "text/calendar; charset=utf-8", true},
    {"ini", "text/plain; charset=utf-8", true},
    {"iso", "application/x-iso9660-image", true},
    {"jar", "application/java-archive", false},
    {"java", "text/plain; charset=utf-8", true},
    {"jpeg", "image/jpeg", false},
    {"jpg", "image/jpeg", false},
    {"js", "text/javascript; charset=utf-8", true},
    {"json", "application/json; charset=utf-8", true},
    {"jsonld", "application/ld+json; charset=utf-8", true},
    {"jxl", "image/jxl", false},
    {"log", "text/plain; charset=utf-8", true},
    {"m4a", "audio/mp4", false},
    {"m4v", "video/mp4", false},
    {"map", "application/json; charset=utf-8", true},
    {"markdown", "text/markdown; charset=utf-8", true},
    {"md", "text/markdown; charset=utf-8", true},
    {"mjs", "text/javascript; charset=utf-8", true},
    {"mkv", "video/x-matroska", false},
    {"mov", "video/quicktime", false},
    {"mp3", "audio/mpeg", false},
    {"mp4", "video/mp4", false},
    {"odt", "application/vnd.oasis.opendocument.text", false},
    {"oga", "audio/ogg", false},
    {"ogg", "audio/ogg", false},
    {"ogv", "video/ogg", false},
    {"opus", "audio/ogg", false},
    {"otf", "font/otf", true},
    {"patch", "text/plain; charset=utf-8", true},
    {"pdf", "application/pdf", false},
    {"png", "image/png", false},
    {"ppt", "application/vnd.ms-powerpoint", true},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation", false},
    {"py", "text/plain; charset=utf-8", true},
    {"rar", "application/vnd.rar", false},
    {"rpm", "application/x-rpm", false},
    {"rs", "text/plain; charset=utf-8", true},
    {"rss", "application/rss+xml; charset=utf-8", true},
    {"rtf", "application/rtf", true},
    {"sh", "text/plain; charset=utf-8", true},
    {"svg", "image/svg+xml; charset=utf-8", true},
    {"swf", "application/x-shockwave-flash", false},
    {"tar", "application/x-tar", true},
    {"tgz", "application/gzip", false},
    {"tif", "image/tiff", true},
    {"tiff", "image/tiff", true},
    {"toml", "text/plain; charset=utf-8", true},
    {"tsv", "text/tab-separated-values; charset=utf-8", true},
    {"ttf", "font/ttf", true},
    {"txt", "text/plain; charset=utf-8", true},
    {"vtt", "text/vtt; charset=utf-8", true},
    {"wasm", "application/wasm", true},
    {"wav", "audio/wav", true},
    {"webm", "video/webm", false},
    {"webmanifest", "application/manifest+json; charset=utf-8", true},
    {"webp", "image/webp", false},
    {"woff", "font/woff", false},
    {"woff2", "font/woff2", false},
    {"xht", "application/xhtml+xml; charset=utf-8", true},
    {"xhtml", "application/xhtml+xml; charset=utf-8", true},
    {"xls", "application/vnd.ms-excel", true},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", false},
    {"xml", "application/xml; charset=utf-8", true},
    {"xz", "application/x-xz", false},
    {"yaml", "text/plain; charset=utf-8", true},
    {"yml", "text/plain; charset=utf-8", true},
    {"zip", "application/zip", false},
    {"zst", "application/zstd", false},
});

constexpr bool is_lookup_key(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

constexpr bool is_well_formed(const auto& entries) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (!is_lookup_key(entries[i].extension)) return false;
    if (i > 0 && !(entries[i - 1].extension < entries[i].extension)) return false;
  }
  return true;
}
static_assert(is_well_formed(table), "mime table: extensions must be lower case, unique, sorted");

constexpr std::size_t longest_extension =
    std::ranges::max(table, {}, [](const entry& e) { return e.extension.size(); }).extension.size();

// The extension of the last path segment, or empty. Leading dots belong to the name (".htaccess",
// "..config"), and a trailing dot gives no extension.
constexpr std::string_view extension_of(std::string_view name) {
  if (const auto slash = name.rfind('/'); slash != std::string_view::npos) {
    name.remove_prefix(slash + 1);
  }
  const auto first_non_dot = name.find_first_not_of('.');
  if (first_non_dot == std::string_view::npos) return {};
  name.remove_prefix(first_non_dot);
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos) return {};
  return name.substr(dot + 1);
}

const entry* find_entry(std::string_view extension) {
  if (extension.empty() || extension.size() > longest_extension) return nullptr;
  std::array<char, longest_extension> buffer{};
  std::ranges::transform(extension, buffer.begin(), syntax::to_lower);
  const std::string_view key(buffer.data(), extension.size());
  const auto* it = std::ranges::lower_bound(table, key, {}, &entry::extension);
  if (it == table.end() || it->extension != key) return nullptr;
  return it;
}

// Bytes the sniffer looks at; a multi-byte sequence cut by this limit still counts as text.
constexpr std::size_t sniff_limit = 1024;

// C0 controls other than \t \n \f \r and ESC, and DEL: their presence means binary.
constexpr bool is_binary_control(unsigned char b) {
  if (b == 0x7f) return true;
  if (b >= 0x20) return false;
  return !(b == '\t' || b == '\n' || b == '\f' || b == '\r' || b == 0x1b);
}

// Valid UTF-8 without binary controls. When `may_be_cut` is set, the bytes may end inside a
// sequence, provided that what is there is a valid start of one.
bool looks_like_text(std::string_view bytes, bool may_be_cut) {
  while (!bytes.empty()) {
    const auto sequence = decode_utf8(bytes);
    if (sequence.status == utf8_status::truncated) return may_be_cut;
    if (sequence.status == utf8_status::invalid) return false;
    if (sequence.code < 0x80 && is_binary_control(static_cast<unsigned char>(sequence.code))) {
      return false;
    }
    bytes.remove_prefix(sequence.size);
  }
  return true;
}

}  // namespace

content_type content_type_for(std::string_view name, std::string_view head) noexcept {
  if (const entry* e = find_entry(extension_of(name))) return {e->value, e->compressible};
  const bool cut = head.size() >= sniff_limit;
  if (cut) head = head.substr(0, sniff_limit);
  // Unknown binary may still compress well; the archiver keeps a variant only if it pays.
  if (looks_like_text(head, cut)) return {text_plain, true};
  return {octet_stream, true};
}

}  // namespace kawipiko::http
