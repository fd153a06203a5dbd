#pragma once
// Callbacks for train(): a progress bar, a CSV logger, early stopping.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <unistd.h>

#include "metagrad/train/loop.hpp"

namespace metagrad {

/// A one-line progress bar on standard error, redrawn a few times a second's worth of steps; silent when standard
/// error is not a terminal (CI logs stay clean).
class ProgressBar {
 public:
  /// A bar labelled label; force draws it even when standard error is not a terminal.
  explicit ProgressBar(std::string label = "", bool force = false) : label_(std::move(label)), active_(force || isatty(2)) {}
  void on_begin(std::int64_t total) { total_ = total; }  ///< Learns the number of steps.
  /// Redraws the bar about 200 times per run.
  void on_step(const StepReport& r) {
    if (!active_ || total_ <= 0) return;
    const std::int64_t every = std::max<std::int64_t>(1, total_ / 200);
    if ((r.step + 1) % every != 0 && r.step + 1 != total_) return;
    const int width = 30, filled = static_cast<int>(width * (r.step + 1) / total_);
    std::fprintf(stderr, "\r%s [%s%s] %lld/%lld loss %.4f", label_.c_str(), std::string(static_cast<std::size_t>(filled), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - filled), '.').c_str(), static_cast<long long>(r.step + 1),
                 static_cast<long long>(total_), r.loss);
    if (r.step_size) std::fprintf(stderr, " step size %.3g", *r.step_size);
    std::fflush(stderr);
  }
  /// Ends the bar's line.
  void on_end(const TrainingSummary&) {
    if (active_ && total_ > 0) std::fprintf(stderr, "\n");
  }

 private:
  std::string label_;
  bool active_;
  std::int64_t total_ = 0;
};

/// Writes one CSV row per step: step, loss, step_size, validation_loss, validation_accuracy (empty when absent).
/// `CsvLogger::append` continues an existing log (a resumed run): the header is written only to an empty file.
class CsvLogger {
 public:
  /// Whether an existing file is replaced or continued.
  enum Mode {
    truncate,  ///< Start a new log.
    append,    ///< Continue an existing log (a resumed run).
  };
  /// Opens path for writing; throws error if it cannot.
  explicit CsvLogger(const std::filesystem::path& path, Mode mode = truncate)
      : out_(path, mode == append ? std::ios::app : std::ios::trunc), path_(path.string()) {
    if (!out_) throw error("CsvLogger: cannot open " + path_ + " for writing");
    std::error_code ec;
    if (mode == truncate || std::filesystem::file_size(path, ec) == 0)
      out_ << "step,loss,step_size,validation_loss,validation_accuracy\n";
  }
  /// Writes the step's row.
  void on_step(const StepReport& r) {
    out_ << r.step << ',' << r.loss << ',';
    if (r.step_size) out_ << *r.step_size;
    out_ << ',';
    if (r.validation_loss) out_ << *r.validation_loss;
    out_ << ',';
    if (r.validation_accuracy) out_ << *r.validation_accuracy;
    out_ << '\n';
  }
  /// Flushes; throws error if writing failed.
  void on_end(const TrainingSummary&) {
    out_.flush();
    if (!out_) throw error("CsvLogger: writing " + path_ + " failed");
  }

 private:
  std::ofstream out_;
  std::string path_;
};

/// Stops when the monitored value — the validation loss where a step reports one, else the training loss — has
/// not improved by more than `min_delta` for `patience` consecutive reports.
class EarlyStopping {
 public:
  /// Stops after patience reports without an improvement above min_delta; throws value_error for patience < 1.
  explicit EarlyStopping(int patience, double min_delta = 0) : patience_(patience), min_delta_(min_delta) {
    if (patience < 1) throw value_error("EarlyStopping: patience must be at least 1, got " + std::to_string(patience));
  }
  /// Monitor only steps that report a validation loss (training losses are then ignored).
  EarlyStopping& on_validation_only() {
    validation_only_ = true;
    return *this;
  }
  /// Records the report; false (stop) when patience has run out.
  bool on_step(const StepReport& r) {
    if (validation_only_ && !r.validation_loss) return true;
    const double value = r.validation_loss ? *r.validation_loss : r.loss;
    if (value < best_ - min_delta_) {
      best_ = value;
      since_best_ = 0;
      return true;
    }
    return ++since_best_ < patience_;
  }
  double best() const { return best_; }  ///< The best value seen.

 private:
  int patience_;
  double min_delta_;
  bool validation_only_ = false;
  double best_ = std::numeric_limits<double>::infinity();
  int since_best_ = 0;
};

}  // namespace metagrad
