#pragma once
// Buffer<T>: the aligned, owned memory behind a Tensor, recycled through a per-thread cache.
//
// A training loop allocates and frees the same sizes every step. Freed large blocks handed straight back to the
// C allocator are often returned to the operating system and page-faulted in again on the next step, which
// costs as much as the arithmetic on them. The cache keeps freed blocks (by exact size) for reuse by the same
// thread, up to a limit, so a loop that repeats reaches a steady state with no allocation at all.
#include <atomic>
#include <cstddef>
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
inline std::atomic<std::size_t>& cache_limit_bytes() {
  static std::atomic<std::size_t> limit{std::size_t(1) << 30};
  return limit;
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
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    held_ -= bytes;
    return p;
  }
  bool give(void* p, std::size_t bytes) {
    if (held_ + bytes > cache_limit_bytes().load(std::memory_order_relaxed)) return false;
    free_[bytes].push_back(p);
    held_ += bytes;
    return true;
  }
  void release() {
    for (auto& [bytes, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    held_ = 0;
  }
  std::size_t held() const { return held_; }
  /// True once this thread's cache has been destroyed (thread exit); later frees bypass it.
  static bool& destroyed() {
    thread_local bool flag = false;
    return flag;
  }

 private:
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::size_t held_ = 0;
};

inline Cache* this_thread_cache() {
  if (Cache::destroyed()) return nullptr;
  thread_local Cache cache;
  return &cache;
}
}  // namespace detail

/// Sets the most memory each thread keeps cached for reuse (default 1 GiB); 0 disables caching.
inline void set_cache_limit(std::size_t bytes) { detail::cache_limit_bytes().store(bytes); }
inline std::size_t cache_limit() { return detail::cache_limit_bytes().load(); }
/// Bytes the calling thread holds in its cache.
inline std::size_t cached_bytes() {
  auto* c = detail::this_thread_cache();
  return c ? c->held() : 0;
}
/// Returns the calling thread's cached blocks to the C allocator.
inline void release_cache() {
  if (auto* c = detail::this_thread_cache()) c->release();
}

inline void* allocate(std::size_t bytes) {
  if (bytes >= min_cached_bytes)
    if (auto* c = detail::this_thread_cache())
      if (void* p = c->take(bytes)) return p;
  return detail::allocate_raw(bytes);
}

inline void deallocate(void* p, std::size_t bytes) {
  if (!p) return;
  if (bytes >= min_cached_bytes)
    if (auto* c = detail::this_thread_cache())
      if (c->give(p, bytes)) return;
  std::free(p);
}

}  // namespace memory

/// Owned, aligned, uninitialized storage for n elements of T. Copies are deep; moves are free.
template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::ptrdiff_t n) : size_(n) {  ///< Storage for n elements, uninitialized.
    if (n > 0) data_ = static_cast<T*>(memory::allocate(bytes()));
  }
  Buffer(const Buffer& other) : Buffer(other.size_) {  ///< Deep copy.
    if (size_ > 0) std::memcpy(data_, other.data_, bytes());
  }
  /// Takes the storage; other is left empty.
  Buffer(Buffer&& other) noexcept : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  /// Copy-and-swap assignment.
  Buffer& operator=(Buffer other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }
  ~Buffer() { memory::deallocate(data_, bytes()); }

  T* data() { return data_; }                    ///< First element.
  const T* data() const { return data_; }        ///< First element.
  std::ptrdiff_t size() const { return size_; }  ///< Number of elements.

 private:
  std::size_t bytes() const { return static_cast<std::size_t>(size_) * sizeof(T); }
  T* data_ = nullptr;
  std::ptrdiff_t size_ = 0;
};

}  // namespace metagrad
