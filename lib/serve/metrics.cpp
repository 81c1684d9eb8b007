#include "serve/metrics.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <new>
#include <utility>

#include "archive/compress.hpp"
#include "base/error.hpp"

namespace kawipiko::serve {

namespace {

// A thread's counters: accepted (plain, TLS), closed (plain, TLS), handshakes, handshake
// failures; then, per site, the answers by protocol, method, status class and encoding; then the
// body bytes per site.
constexpr std::size_t thread_fixed = 6;
constexpr std::size_t protocols = 3, methods = 5, classes = 5, codings = 3;
constexpr std::size_t per_site = protocols * methods * classes * codings;
// A process's: dropped log lines, then per archive its generation, size, build, reloads done
// and refused; then its threads'.
constexpr std::size_t per_archive = 5;

constexpr std::string_view protocol_names[protocols] = {"HTTP/1.0", "HTTP/1.1", "HTTP/2.0"};
// serve::method's order, then a request that could not be parsed.
constexpr std::string_view method_names[methods] = {"GET", "HEAD", "OTHER", "UNKNOWN", "-"};
constexpr std::string_view class_names[classes] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static_assert(static_cast<int>(method::get) == 0 && static_cast<int>(method::unknown) == 3);

std::size_t answer_slot(std::size_t site, std::size_t protocol, std::size_t method,
                        std::size_t status_class, std::size_t coding) noexcept {
  return (((site * protocols + protocol) * methods + method) * classes + status_class) * codings +
         coding;
}

// A label value in the exposition format: backslash, quote and line feed escaped.
void append_label(std::string& out, std::string_view name, std::string_view value) {
  if (out.back() != '{') out += ',';
  out += name;
  out += "=\"";
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  out += '"';
}

void append_family(std::string& out, std::string_view name, std::string_view type,
                   std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// One sample: `name{labels} value`, the labels given as name/value pairs.
void append_sample(std::string& out, std::string_view name,
                   std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
                   std::uint64_t value) {
  out += name;
  if (labels.size() > 0) {
    out += '{';
    for (const auto& [label, text] : labels) append_label(out, label, text);
    out += '}';
  }
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

std::uint64_t parse_build(std::string_view build) noexcept {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(build.data(), build.data() + build.size(), value, 16);
  return error == std::errc() && end == build.data() + build.size() ? value : 0;
}

std::string format_build(std::uint64_t build) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(build));
  return text;
}

}  // namespace

std::string_view protocol_name(wire_protocol p) noexcept {
  return protocol_names[static_cast<std::size_t>(p)];
}

void thread_counters::answered(wire_protocol protocol, const request* req,
                               const response_info& info) noexcept {
  auto site = info.host < 0 ? std::size_t{0} : static_cast<std::size_t>(info.host) + 1;
  if (site >= sites_) site = 0;
  const auto method_index = req == nullptr ? methods - 1 : static_cast<std::size_t>(req->verb);
  const auto hundreds = info.status / 100;
  const auto status_class = hundreds >= 1 && hundreds <= 5 ? hundreds - 1 : classes - 1;
  const auto slot = answer_slot(site, static_cast<std::size_t>(protocol), method_index,
                                status_class, static_cast<std::size_t>(info.coding) % codings);
  base_[thread_fixed + slot].add();
  base_[thread_fixed + sites_ * per_site + site].add(info.body_bytes);
}

void process_counters::archive_state(std::size_t index, std::uint64_t generation,
                                     std::uint64_t size, std::string_view build) noexcept {
  auto* state = archive(index);
  state[1].set(size);
  state[2].set(parse_build(build));
  state[0].set(generation);
}

metrics_store::metrics_store(unsigned processes, unsigned threads, std::vector<std::string> hosts,
                             std::vector<std::string> archives)
    : processes_(processes), threads_(threads), archives_(std::move(archives)) {
  sites_.emplace_back("_default");
  for (auto& h : hosts) sites_.push_back(std::move(h));
  thread_size_ = thread_fixed + sites_.size() * (per_site + 1);
  process_size_ = 1 + archives_.size() * per_archive + threads_ * thread_size_;
  const std::size_t count = processes_ * process_size_;
  bytes_ = count * sizeof(counter);
  void* memory = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) base::throw_errno(errno, "cannot map memory for", "the metrics");
  counters_ = static_cast<counter*>(memory);
  for (std::size_t i = 0; i < count; ++i) new (counters_ + i) counter;
}

metrics_store::~metrics_store() {
  ::munmap(counters_, bytes_);
}

counter* metrics_store::process_base(unsigned process) const noexcept {
  return counters_ + process * process_size_;
}

counter* metrics_store::thread_base(unsigned process, unsigned thread) const noexcept {
  return process_base(process) + 1 + archives_.size() * per_archive + thread * thread_size_;
}

thread_counters metrics_store::thread(unsigned process, unsigned thread) const noexcept {
  return {thread_base(process, thread), sites_.size()};
}

process_counters metrics_store::process(unsigned process) const noexcept {
  return process_counters(process_base(process));
}

void metrics_store::forget_connections(unsigned process) noexcept {
  for (unsigned t = 0; t < threads_; ++t) {
    auto* base = thread_base(process, t);
    base[2].set(base[0].get());
    base[3].set(base[1].get());
  }
}

std::uint64_t metrics_store::sum_threads(std::size_t offset) const noexcept {
  std::uint64_t total = 0;
  for (unsigned p = 0; p < processes_; ++p) {
    for (unsigned t = 0; t < threads_; ++t) total += thread_base(p, t)[offset].get();
  }
  return total;
}

void metrics_store::write(std::string& out) const {
  write_requests(out);
  write_connections(out);
  write_archives(out);
  std::uint64_t dropped = 0;
  for (unsigned p = 0; p < processes_; ++p) dropped += process_base(p)[0].get();
  append_family(out, "kawipiko_access_log_dropped_lines_total", "counter",
                "Access log lines dropped because the log's destination did not take them in "
                "time.");
  append_sample(out, "kawipiko_access_log_dropped_lines_total", {}, dropped);
}

void metrics_store::write_requests(std::string& out) const {
  append_family(out, "kawipiko_requests_total", "counter",
                "Answered requests, malformed ones included, by site (its --host pattern, or "
                "_default), protocol, method, status class and content encoding.");
  for (std::size_t s = 0; s < sites_.size(); ++s) {
    for (std::size_t p = 0; p < protocols; ++p) {
      for (std::size_t m = 0; m < methods; ++m) {
        for (std::size_t c = 0; c < classes; ++c) {
          for (std::size_t e = 0; e < codings; ++e) {
            const auto value = sum_threads(thread_fixed + answer_slot(s, p, m, c, e));
            if (value == 0) continue;
            append_sample(out, "kawipiko_requests_total",
                          {{"host", sites_[s]},
                           {"protocol", protocol_names[p]},
                           {"method", method_names[m]},
                           {"code", class_names[c]},
                           {"encoding", archive::token(static_cast<archive::encoding>(e))}},
                          value);
          }
        }
      }
    }
  }
  append_family(out, "kawipiko_response_body_bytes_total", "counter",
                "Body bytes of the answers, by site.");
  for (std::size_t s = 0; s < sites_.size(); ++s) {
    append_sample(out, "kawipiko_response_body_bytes_total", {{"host", sites_[s]}},
                  sum_threads(thread_fixed + sites_.size() * per_site + s));
  }
}

void metrics_store::write_connections(std::string& out) const {
  constexpr std::string_view transports[2] = {"tcp", "tls"};
  std::uint64_t accepted[2], closed[2];
  for (std::size_t t = 0; t < 2; ++t) {
    closed[t] = sum_threads(2 + t);  // before accepted: a connection is accepted before closed
    accepted[t] = sum_threads(t);
  }
  append_family(out, "kawipiko_connections_accepted_total", "counter",
                "Client connections accepted, by transport.");
  for (std::size_t t = 0; t < 2; ++t) {
    append_sample(out, "kawipiko_connections_accepted_total", {{"transport", transports[t]}},
                  accepted[t]);
  }
  append_family(out, "kawipiko_connections_closed_total", "counter",
                "Client connections closed, by transport.");
  for (std::size_t t = 0; t < 2; ++t) {
    append_sample(out, "kawipiko_connections_closed_total", {{"transport", transports[t]}},
                  closed[t]);
  }
  append_family(out, "kawipiko_connections_open", "gauge",
                "Client connections open, by transport.");
  for (std::size_t t = 0; t < 2; ++t) {
    append_sample(out, "kawipiko_connections_open", {{"transport", transports[t]}},
                  accepted[t] - std::min(accepted[t], closed[t]));
  }
  append_family(out, "kawipiko_tls_handshakes_total", "counter", "TLS handshakes completed.");
  append_sample(out, "kawipiko_tls_handshakes_total", {}, sum_threads(4));
  append_family(out, "kawipiko_tls_handshake_failures_total", "counter",
                "TLS handshakes refused (a bad or unacceptable ClientHello, an alert).");
  append_sample(out, "kawipiko_tls_handshake_failures_total", {}, sum_threads(5));
}

// With several processes each loads its own copy of every archive: the reloads are summed, the
// generation and size are those of the most recent load, and there is one info sample per build
// that some process serves (two while a reload failed in one of them).
void metrics_store::write_archives(std::string& out) const {
  struct live {
    std::uint64_t generation = 0, size = 0, done = 0, refused = 0;
    std::vector<std::uint64_t> builds;
  };
  std::vector<live> state(archives_.size());
  for (unsigned p = 0; p < processes_; ++p) {
    const auto* base = process_base(p) + 1;
    for (std::size_t a = 0; a < archives_.size(); ++a) {
      const auto* counters = base + a * per_archive;
      auto& s = state[a];
      s.done += counters[3].get();
      s.refused += counters[4].get();
      const auto generation = counters[0].get();
      if (generation == 0) continue;  // not loaded (yet) in that process
      const auto build = counters[2].get();
      if (std::find(s.builds.begin(), s.builds.end(), build) == s.builds.end()) {
        s.builds.push_back(build);
      }
      if (generation >= s.generation) {
        s.generation = generation;
        s.size = counters[1].get();
      }
    }
  }
  append_family(out, "kawipiko_archive_reloads_total", "counter",
                "Archive reloads, by archive and result (refused: the new file did not open or "
                "validate, the live one went on).");
  for (std::size_t a = 0; a < archives_.size(); ++a) {
    append_sample(out, "kawipiko_archive_reloads_total",
                  {{"archive", archives_[a]}, {"result", "done"}}, state[a].done);
    append_sample(out, "kawipiko_archive_reloads_total",
                  {{"archive", archives_[a]}, {"result", "refused"}}, state[a].refused);
  }
  append_family(out, "kawipiko_archive_info", "gauge",
                "The build served from each archive (a digest of its entries): 1.");
  for (std::size_t a = 0; a < archives_.size(); ++a) {
    for (const auto build : state[a].builds) {
      append_sample(out, "kawipiko_archive_info",
                    {{"archive", archives_[a]}, {"build", format_build(build)}}, 1);
    }
  }
  append_family(out, "kawipiko_archive_generation", "gauge",
                "The live generation of each archive: 1 at start, one more per reload.");
  for (std::size_t a = 0; a < archives_.size(); ++a) {
    append_sample(out, "kawipiko_archive_generation", {{"archive", archives_[a]}},
                  state[a].generation);
  }
  append_family(out, "kawipiko_archive_size_bytes", "gauge", "Size of the live archive file.");
  for (std::size_t a = 0; a < archives_.size(); ++a) {
    append_sample(out, "kawipiko_archive_size_bytes", {{"archive", archives_[a]}}, state[a].size);
  }
}

}  // namespace kawipiko::serve
