#pragma once
// The live generation of the archives (a site_set: the default site and one per virtual host)
// and who still uses the old ones. A reload opens and validates a new archive off the serving
// threads and replaces, in a new set, the sites it brings (site_source): every host of an
// archive of host folders at once; each archive reloads on its own, and nothing is ever changed
// in place. Each worker takes the new generation between batches and keeps each one it has used
// (site_hold) until no connection or stream of its own still sends from it (site_use): a
// response under way finishes from the generation it started with, and the old mapping goes when
// its last response is out.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

#include "serve/host_table.hpp"
#include "serve/site.hpp"

namespace kawipiko::serve {

class site_source {
 public:
  explicit site_source(std::shared_ptr<const site_set> first) : current_(std::move(first)) {}

  // Bumped by every replace(); a worker compares it with the one it last took.
  [[nodiscard]] std::uint64_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::shared_ptr<const site_set> current() const {
    const std::lock_guard lock(mutex_);
    return current_;
  }
  // Thread-safe: the whole set, or (replace_from) what one archive brought: its sites, for
  // --archive (`from` -1) its default one too (host_table.hpp's replaced()).
  void replace(std::shared_ptr<const site_set> next) {
    {
      const std::lock_guard lock(mutex_);
      current_ = std::move(next);
    }
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  void replace_from(int from, site_set part) {
    {
      const std::lock_guard lock(mutex_);
      current_ = std::make_shared<const site_set>(replaced(*current_, from, std::move(part)));
    }
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const site_set> current_;
  std::atomic<std::uint64_t> generation_{1};
};

// One worker's hold on one generation, and how many of its connections and streams still send
// from it (a plain count: only that worker's thread touches it).
struct site_hold {
  std::shared_ptr<const site_set> generation;
  std::size_t users = 0;
};

// A connection's or a stream's use of a generation, while bytes of it wait to be sent.
class site_use {
 public:
  site_use() = default;
  explicit site_use(site_hold& hold) noexcept : hold_(&hold) { ++hold.users; }
  site_use(site_use&& other) noexcept : hold_(std::exchange(other.hold_, nullptr)) {}
  site_use& operator=(site_use&& other) noexcept {
    if (this != &other) {
      release();
      hold_ = std::exchange(other.hold_, nullptr);
    }
    return *this;
  }
  site_use(const site_use&) = delete;
  site_use& operator=(const site_use&) = delete;
  ~site_use() { release(); }

  [[nodiscard]] explicit operator bool() const noexcept { return hold_ != nullptr; }
  [[nodiscard]] bool of(const site_hold& hold) const noexcept { return hold_ == &hold; }

 private:
  void release() noexcept {
    if (hold_ != nullptr) --hold_->users;
    hold_ = nullptr;
  }

  site_hold* hold_ = nullptr;
};

}  // namespace kawipiko::serve
