#pragma once
// The archive's content codecs: gzip (zlib) and brotli, one small interface. Output is
// deterministic for the same input and level (gzip header: no name, mtime 0, fixed OS byte), so
// archives are reproducible. Decoding exists to verify variants reused from a previous archive.

#include <optional>
#include <string>
#include <string_view>

namespace kawipiko::archive {

enum class encoding : unsigned char { identity = 0, gzip = 1, br = 2 };

// "identity", "gzip", "br": the Content-Encoding token (identity is never sent as a header).
[[nodiscard]] std::string_view token(encoding e) noexcept;

// "identity", "gzip", "brotli": the codec's name on the command line and in messages.
[[nodiscard]] std::string_view codec_name(encoding e) noexcept;
// A name of codec_name(), or one of the aliases "br" and "none"; nullopt for anything else.
[[nodiscard]] std::optional<encoding> parse_codec_name(std::string_view name) noexcept;

// Levels: gzip 1..9 (zlib), br 0..11 (brotli quality). Default: gzip 9, br 11.
[[nodiscard]] int default_level(encoding e) noexcept;
[[nodiscard]] bool is_valid_level(encoding e, int level) noexcept;

// Compresses `input` with `e` at `level` (is_valid_level(e, level) is a precondition; identity
// returns a copy). Throws std::runtime_error only on codec failure (out of memory); the result may
// be larger than the input. Thread-safe: no shared state.
[[nodiscard]] std::string compress(encoding e, int level, std::string_view input);

// Decodes `input`; nullopt if it is not a valid, complete stream of `e` (one gzip member only, no
// trailing bytes) or if the output would exceed `max_output` bytes. Never throws for bad input.
[[nodiscard]] std::optional<std::string> decompress(encoding e, std::string_view input,
                                                    std::size_t max_output);

}  // namespace kawipiko::archive
