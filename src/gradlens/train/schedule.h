// Learning-rate schedules as pure functions of the step.
#pragma once

#include <cstdint>
#include <string>

namespace gradlens::train {

enum class ScheduleKind { kConstant, kCosine, kStep, kOneCycle };

/// "constant" | "cosine" | "step" | "onecycle"; throws c10::Error naming
/// --schedule otherwise.
ScheduleKind parse_schedule(const std::string& s);
std::string schedule_name(ScheduleKind k);

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::kOneCycle;
  /// Peak (onecycle), initial (cosine, step) or constant learning rate.
  double lr = 0.1;
  /// cosine: linear warm-up over this many steps, then cosine to min_lr.
  int64_t warmup_steps = 0;
  double min_lr = 0.0;
  /// step: multiply by gamma every step_size steps.
  int64_t step_size = 1;
  double gamma = 0.1;
  /// onecycle (as torch.optim.lr_scheduler.OneCycleLR, anneal_strategy=cos,
  /// three_phase=False): start at lr/div_factor, rise to lr over pct_start of
  /// the steps, fall to lr/(div_factor*final_div_factor).
  double pct_start = 0.3;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
};

/// The learning rate at `step` (0-based) of `total_steps`. Throws c10::Error
/// when total_steps < 1, step < 0 or the options are out of range.
double lr_at(const ScheduleOptions& opts, int64_t step, int64_t total_steps);

}  // namespace gradlens::train
