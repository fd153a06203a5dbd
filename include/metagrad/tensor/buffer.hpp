#pragma once
// Buffer<T>: the aligned memory behind a Tensor, recycled through a per-thread cache (or borrowed, for a view).
//
// A training loop allocates and frees the same sizes every step. Freed large blocks handed straight back to the
// C allocator are returned to the operating system and page-faulted in again, zeroed, on the next step, which
// costs as much as the arithmetic on them. The cache keeps freed blocks (by exact size) for reuse, so a loop that
// repeats reaches a steady state with no allocation at all. What the caches hold is bounded by the program's own
// needs: at most max(limit, the high-water mark of live bytes), so a step whose temporaries exceed the limit still
// reuses them, and caching at most doubles the footprint of a program above the limit. (Bounding cached + live by
// the peak instead is too tight: a step's temporaries of one size are freed before those of another are allocated.)
// When a freed block does not fit, the least recently used sizes make room: a program whose shapes change (another
// problem size, another phase) gets its new sizes cached instead of page-faulting them in on every allocation.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

namespace metagrad {
namespace memory {

/// Blocks are aligned for the widest vector unit (AVX-512).
inline constexpr std::size_t alignment = 64;
/// Blocks smaller than this go straight to the C allocator, which serves them well.
inline constexpr std::size_t min_cached_bytes = 16384;

namespace detail {
/// Process-wide byte counts of blocks of at least min_cached_bytes (all threads together).
struct Counters {
  std::atomic<std::size_t> limit{std::size_t(1) << 30};
  std::atomic<std::size_t> live{0};    ///< held by buffers
  std::atomic<std::size_t> peak{0};    ///< the high-water mark of live
  std::atomic<std::size_t> cached{0};  ///< held by the caches
};
inline Counters& counters() {
  static Counters c;
  return c;
}

/// How much the caches may hold: the limit, or the high-water mark of live bytes when that is larger.
inline std::size_t cache_budget() {
  auto& c = counters();
  const std::size_t limit = c.limit.load(std::memory_order_relaxed);
  return limit == 0 ? 0 : std::max(limit, c.peak.load(std::memory_order_relaxed));
}

inline void* allocate_raw(std::size_t bytes) {
  void* p = std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
  if (!p) throw std::bad_alloc();
  return p;
}

class Cache {
 public:
  ~Cache() {
    release();
    destroyed() = true;
  }
  void* take(std::size_t bytes) {
    auto it = free_.find(bytes);
    if (it == free_.end() || it->second.blocks.empty()) return nullptr;
    void* p = it->second.blocks.back();
    it->second.blocks.pop_back();
    it->second.last_use = ++clock_;
    forget(bytes);
    return p;
  }
  /// Keeps p for reuse, making room by returning the least recently used sizes' blocks to the C allocator: the
  /// sizes a program stopped using must not keep the ones it uses now out (each of those would be page-faulted in
  /// again, zeroed, on every allocation). False when p cannot be kept.
  bool give(void* p, std::size_t bytes) noexcept {
    const std::size_t budget = cache_budget();
    if (bytes > budget) return false;
    try {
      SizeClass& own = free_[bytes];
      own.blocks.reserve(own.blocks.size() + 1);  // the only step that can throw, taken before anything is freed
      own.last_use = ++clock_;
      while (counters().cached.load(std::memory_order_relaxed) + bytes > budget)
        if (!evict_least_recent(bytes)) return false;
      own.blocks.push_back(p);
    } catch (...) {
      return false;
    }
    held_ += bytes;
    counters().cached += bytes;
    return true;
  }
  void release() {
    for (auto& [bytes, cls] : free_)
      for (void* p : cls.blocks) std::free(p);
    free_.clear();
    counters().cached -= held_;
    held_ = 0;
  }
  std::size_t held() const { return held_; }
  /// True once this thread's cache has been destroyed (thread exit); later frees bypass it.
  static bool& destroyed() {
    thread_local bool flag = false;
    return flag;
  }

 private:
  struct SizeClass {
    std::vector<void*> blocks;
    std::uint64_t last_use = 0;  ///< when a block of this size was last given or taken
  };
  void forget(std::size_t bytes) {
    held_ -= bytes;
    counters().cached -= bytes;
  }
  /// Frees one block of the least recently used size other than `keep`; false when there is none.
  bool evict_least_recent(std::size_t keep) {
    SizeClass* oldest = nullptr;
    std::size_t oldest_bytes = 0;
    for (auto& [bytes, cls] : free_)
      if (bytes != keep && !cls.blocks.empty() && (!oldest || cls.last_use < oldest->last_use))
        oldest = &cls, oldest_bytes = bytes;
    if (!oldest) return false;
    std::free(oldest->blocks.back());
    oldest->blocks.pop_back();
    forget(oldest_bytes);
    return true;
  }
  std::unordered_map<std::size_t, SizeClass> free_;
  std::size_t held_ = 0;
  std::uint64_t clock_ = 0;
};

inline Cache* this_thread_cache() {
  if (Cache::destroyed()) return nullptr;
  thread_local Cache cache;
  return &cache;
}
}  // namespace detail

/// Sets the most the caches hold when the program's high-water mark is lower (default 1 GiB); 0 turns caching off.
inline void set_cache_limit(std::size_t bytes) { detail::counters().limit.store(bytes); }
/// The limit set by set_cache_limit.
inline std::size_t cache_limit() { return detail::counters().limit.load(); }
/// Bytes the calling thread holds in its cache.
inline std::size_t cached_bytes() {
  auto* c = detail::this_thread_cache();
  return c ? c->held() : 0;
}
/// Bytes of large blocks (16 KiB or more) held by tensors now, over all threads.
inline std::size_t live_bytes() { return detail::counters().live.load(); }
/// The most live_bytes() has been since the start, or since the last release_cache().
inline std::size_t high_water_bytes() { return detail::counters().peak.load(); }
/// Returns the calling thread's cached blocks to the C allocator and lowers the high-water mark to the live bytes,
/// so that a one-off large computation stops entitling the cache to its memory.
inline void release_cache() {
  if (auto* c = detail::this_thread_cache()) c->release();
  detail::counters().peak.store(detail::counters().live.load());
}

inline void* allocate(std::size_t bytes) {
  if (bytes < min_cached_bytes) return detail::allocate_raw(bytes);
  auto* cache = detail::this_thread_cache();
  void* p = cache ? cache->take(bytes) : nullptr;
  if (!p) p = detail::allocate_raw(bytes);
  auto& c = detail::counters();
  const std::size_t live = c.live.fetch_add(bytes) + bytes;
  for (std::size_t peak = c.peak.load(); live > peak && !c.peak.compare_exchange_weak(peak, live);) {
  }
  return p;
}

inline void deallocate(void* p, std::size_t bytes) {
  if (!p) return;
  if (bytes >= min_cached_bytes) {
    detail::counters().live -= bytes;
    if (auto* c = detail::this_thread_cache())
      if (c->give(p, bytes)) return;
  }
  std::free(p);
}

}  // namespace memory

/// Aligned, uninitialized storage for n elements of T: owned, or borrowed from another buffer that outlives it.
/// Copies are deep and owned; moves are free.
template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::ptrdiff_t n) : size_(n) {  ///< Storage for n elements, uninitialized.
    if (n > 0) data_ = static_cast<T*>(memory::allocate(bytes()));
  }
  /// n elements at data, owned elsewhere: the caller keeps them alive and unchanged while this buffer lives.
  static Buffer borrow(T* data, std::ptrdiff_t n) {
    Buffer b;
    b.data_ = data;
    b.size_ = n;
    b.owned_ = false;
    return b;
  }
  Buffer(const Buffer& other) : Buffer(other.size_) {  ///< Deep copy, into owned storage.
    if (size_ > 0) std::memcpy(data_, other.data_, bytes());
  }
  /// Takes the storage; other is left empty.
  Buffer(Buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        owned_(std::exchange(other.owned_, true)) {}
  /// Copy-and-swap assignment.
  Buffer& operator=(Buffer other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(owned_, other.owned_);
    return *this;
  }
  ~Buffer() {
    if (owned_) memory::deallocate(data_, bytes());
  }

  T* data() { return data_; }                    ///< First element.
  const T* data() const { return data_; }        ///< First element.
  std::ptrdiff_t size() const { return size_; }  ///< Number of elements.
  bool owned() const { return owned_; }          ///< False for borrowed storage.

 private:
  std::size_t bytes() const { return static_cast<std::size_t>(size_) * sizeof(T); }
  T* data_ = nullptr;
  std::ptrdiff_t size_ = 0;
  bool owned_ = true;
};

}  // namespace metagrad
