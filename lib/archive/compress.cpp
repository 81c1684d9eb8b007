#include "archive/compress.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#define ZLIB_CONST  // next_in as a pointer to const
#include <brotli/decode.h>
#include <brotli/encode.h>
#include <zlib.h>

namespace kawipiko::archive {

namespace {

// zlib counts in uInt; larger buffers are fed and drained in slices of at most this many bytes.
constexpr std::size_t max_slice = UINT_MAX;

// Output is drained through a buffer of this size while decoding, so that the max_output check
// happens before the result grows past it.
constexpr std::size_t decode_chunk = 64 * 1024;

constexpr int gzip_window_bits = 15 + 16;  // 32 KiB window, gzip wrapper (and only gzip)
constexpr int gzip_mem_level = 9;
constexpr int gzip_os_unknown = 255;  // RFC 1952 OS byte: fixed, so output is host-independent

uInt slice(std::size_t n) {
  return static_cast<uInt>(std::min(n, max_slice));
}

// Ends a z_stream on every exit path.
class deflate_stream {
 public:
  explicit deflate_stream(int level) {
    if (deflateInit2(&stream_, level, Z_DEFLATED, gzip_window_bits, gzip_mem_level,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
      throw std::runtime_error("gzip: cannot initialise deflate at level " + std::to_string(level));
    }
  }
  deflate_stream(const deflate_stream&) = delete;
  deflate_stream& operator=(const deflate_stream&) = delete;
  ~deflate_stream() { deflateEnd(&stream_); }
  z_stream* get() { return &stream_; }

 private:
  z_stream stream_{};
};

class inflate_stream {
 public:
  inflate_stream() { ok_ = inflateInit2(&stream_, gzip_window_bits) == Z_OK; }
  inflate_stream(const inflate_stream&) = delete;
  inflate_stream& operator=(const inflate_stream&) = delete;
  ~inflate_stream() {
    if (ok_) inflateEnd(&stream_);
  }
  [[nodiscard]] bool ok() const { return ok_; }
  z_stream* get() { return &stream_; }

 private:
  z_stream stream_{};
  bool ok_ = false;
};

std::string gzip_compress(int level, std::string_view input) {
  deflate_stream stream(level);
  z_stream* zs = stream.get();

  // RFC 1952 header: no name, no comment, no extra field, mtime 0, OS unknown. zlib keeps a
  // pointer to it until the header is written, hence it lives as long as the stream.
  gz_header header{};
  header.time = 0;
  header.os = gzip_os_unknown;
  if (deflateSetHeader(zs, &header) != Z_OK) {
    throw std::runtime_error("gzip: cannot set the header");
  }

  std::string out(deflateBound(zs, input.size()), '\0');
  zs->next_in = reinterpret_cast<const Bytef*>(input.data());
  std::size_t in_left = input.size();
  std::size_t out_used = 0;
  for (;;) {
    if (zs->avail_in == 0 && in_left > 0) {
      zs->avail_in = slice(in_left);
      in_left -= zs->avail_in;
    }
    if (out_used == out.size()) out.resize(out.size() + out.size() / 2 + 64);
    const uInt offered = slice(out.size() - out_used);
    zs->next_out = reinterpret_cast<Bytef*>(out.data() + out_used);
    zs->avail_out = offered;
    const int flush = (in_left == 0) ? Z_FINISH : Z_NO_FLUSH;
    const int rc = deflate(zs, flush);
    out_used += offered - zs->avail_out;
    if (rc == Z_STREAM_END) break;
    // Z_BUF_ERROR only means "no progress with this much room"; the loop gives more.
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      throw std::runtime_error("gzip: deflate failed (zlib error " + std::to_string(rc) + ")");
    }
  }
  out.resize(out_used);
  return out;
}

// Generic mode: measured on the Python 3.11 HTML docs (index.html 13011 B → 2352 B at q11,
// functions.html 290802 B → 31057 B, basic.css 14810 B → 2938 B), BROTLI_MODE_TEXT gave
// byte-identical output at every quality 0..11 with brotli 1.0.9, so the hint buys nothing.
std::string brotli_compress(int quality, std::string_view input) {
  std::size_t size = BrotliEncoderMaxCompressedSize(input.size());
  if (size == 0) throw std::runtime_error("brotli: input too large");
  std::string out(size, '\0');
  // The one-shot encoder also falls back to stored meta-blocks when compression would expand.
  if (BrotliEncoderCompress(quality, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, input.size(),
                            reinterpret_cast<const std::uint8_t*>(input.data()), &size,
                            reinterpret_cast<std::uint8_t*>(out.data())) != BROTLI_TRUE) {
    throw std::runtime_error("brotli: compression failed");
  }
  out.resize(size);
  return out;
}

std::optional<std::string> gzip_decompress(std::string_view input, std::size_t max_output) {
  inflate_stream stream;
  if (!stream.ok()) return std::nullopt;
  z_stream* zs = stream.get();

  std::array<Bytef, decode_chunk> chunk;
  std::string out;
  zs->next_in = reinterpret_cast<const Bytef*>(input.data());
  std::size_t in_left = input.size();
  for (;;) {
    if (zs->avail_in == 0 && in_left > 0) {
      zs->avail_in = slice(in_left);
      in_left -= zs->avail_in;
    }
    zs->next_out = chunk.data();
    zs->avail_out = static_cast<uInt>(chunk.size());
    const int rc = inflate(zs, Z_NO_FLUSH);
    const std::size_t produced = chunk.size() - zs->avail_out;
    if (produced > max_output - out.size()) return std::nullopt;
    out.append(reinterpret_cast<const char*>(chunk.data()), produced);
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && zs->avail_in == 0 && in_left == 0) return std::nullopt;  // truncated
    if (rc != Z_OK && rc != Z_BUF_ERROR) return std::nullopt;  // data, dictionary, memory error
  }
  // One member only: anything after it (garbage or a second member) is rejected.
  if (zs->avail_in != 0 || in_left != 0) return std::nullopt;
  return out;
}

std::optional<std::string> brotli_decompress(std::string_view input, std::size_t max_output) {
  struct decoder_deleter {
    void operator()(BrotliDecoderState* s) const { BrotliDecoderDestroyInstance(s); }
  };
  const std::unique_ptr<BrotliDecoderState, decoder_deleter> decoder(
      BrotliDecoderCreateInstance(nullptr, nullptr, nullptr));
  if (!decoder) return std::nullopt;

  std::array<std::uint8_t, decode_chunk> chunk;
  std::string out;
  std::size_t in_left = input.size();
  const auto* next_in = reinterpret_cast<const std::uint8_t*>(input.data());
  for (;;) {
    std::size_t out_left = chunk.size();
    std::uint8_t* next_out = chunk.data();
    const BrotliDecoderResult rc = BrotliDecoderDecompressStream(decoder.get(), &in_left, &next_in,
                                                                 &out_left, &next_out, nullptr);
    const std::size_t produced = chunk.size() - out_left;
    if (produced > max_output - out.size()) return std::nullopt;
    out.append(reinterpret_cast<const char*>(chunk.data()), produced);
    switch (rc) {
      case BROTLI_DECODER_RESULT_SUCCESS:
        if (in_left != 0) return std::nullopt;  // trailing bytes after the last meta-block
        return out;
      case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
        continue;
      case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:  // all input was given: truncated
      case BROTLI_DECODER_RESULT_ERROR:
        return std::nullopt;
    }
    return std::nullopt;
  }
}

}  // namespace

std::string_view token(encoding e) noexcept {
  switch (e) {
    case encoding::identity:
      return "identity";
    case encoding::gzip:
      return "gzip";
    case encoding::br:
      return "br";
  }
  return "identity";
}

std::string_view codec_name(encoding e) noexcept {
  return e == encoding::br ? "brotli" : token(e);
}

std::optional<encoding> parse_codec_name(std::string_view name) noexcept {
  for (const auto e : {encoding::identity, encoding::gzip, encoding::br}) {
    if (name == codec_name(e) || name == token(e)) return e;
  }
  if (name == "none") return encoding::identity;
  return std::nullopt;
}

int default_level(encoding e) noexcept {
  switch (e) {
    case encoding::identity:
      return 0;
    case encoding::gzip:
      return 9;
    case encoding::br:
      return 11;
  }
  return 0;
}

bool is_valid_level(encoding e, int level) noexcept {
  switch (e) {
    case encoding::identity:
      return level == 0;
    case encoding::gzip:
      return level >= 1 && level <= 9;
    case encoding::br:
      return level >= BROTLI_MIN_QUALITY && level <= BROTLI_MAX_QUALITY;
  }
  return false;
}

std::string compress(encoding e, int level, std::string_view input) {
  assert(is_valid_level(e, level));
  switch (e) {
    case encoding::identity:
      return std::string(input);
    case encoding::gzip:
      return gzip_compress(level, input);
    case encoding::br:
      return brotli_compress(level, input);
  }
  throw std::runtime_error("compress: unknown encoding");
}

std::optional<std::string> decompress(encoding e, std::string_view input, std::size_t max_output) {
  switch (e) {
    case encoding::identity:
      if (input.size() > max_output) return std::nullopt;
      return std::string(input);
    case encoding::gzip:
      return gzip_decompress(input, max_output);
    case encoding::br:
      return brotli_decompress(input, max_output);
  }
  return std::nullopt;
}

}  // namespace kawipiko::archive
