#include "gradlens/train/schedule.h"

#include <cmath>

#include "gradlens/core/check.h"

namespace gradlens::train {

namespace {
constexpr double kPi = 3.14159265358979323846;
double cos_anneal(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(kPi * pct) + 1.0);
}
}  // namespace

ScheduleKind parse_schedule(const std::string& s) {
  if (s == "constant") return ScheduleKind::kConstant;
  if (s == "cosine") return ScheduleKind::kCosine;
  if (s == "step") return ScheduleKind::kStep;
  if (s == "onecycle") return ScheduleKind::kOneCycle;
  GRADLENS_CHECK_OPTION(false, "--schedule: unknown schedule '", s,
                 "'; use constant, cosine, step or onecycle");
  return ScheduleKind::kConstant;
}

std::string schedule_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::kConstant: return "constant";
    case ScheduleKind::kCosine: return "cosine";
    case ScheduleKind::kStep: return "step";
    case ScheduleKind::kOneCycle: return "onecycle";
  }
  return "?";
}

double lr_at(const ScheduleOptions& o, int64_t step, int64_t total) {
  GRADLENS_CHECK(total >= 1, "schedule needs at least one step, got ", total);
  GRADLENS_CHECK(step >= 0, "schedule step must be >= 0, got ", step);
  GRADLENS_CHECK(o.lr > 0 && std::isfinite(o.lr), "--lr must be a positive number, got ", o.lr);
  switch (o.kind) {
    case ScheduleKind::kConstant:
      return o.lr;
    case ScheduleKind::kStep:
      GRADLENS_CHECK(o.step_size >= 1, "--step-size must be >= 1, got ", o.step_size);
      return o.lr * std::pow(o.gamma, static_cast<double>(step / o.step_size));
    case ScheduleKind::kCosine: {
      if (step < o.warmup_steps) return o.lr * static_cast<double>(step + 1) / o.warmup_steps;
      const int64_t span = std::max<int64_t>(1, total - o.warmup_steps);
      const double pct = std::min(1.0, static_cast<double>(step - o.warmup_steps) / span);
      return cos_anneal(o.lr, o.min_lr, pct);
    }
    case ScheduleKind::kOneCycle: {
      GRADLENS_CHECK(o.pct_start > 0 && o.pct_start < 1, "--pct-start must be in (0, 1), got ",
                     o.pct_start);
      const double initial = o.lr / o.div_factor;
      const double min_lr = initial / o.final_div_factor;
      // torch: phase ends at pct_start*total - 1 and total - 1.
      const double up_end = o.pct_start * static_cast<double>(total) - 1.0;
      const double down_end = static_cast<double>(total) - 1.0;
      const double s = static_cast<double>(step);
      if (s <= up_end) return cos_anneal(initial, o.lr, up_end > 0 ? s / up_end : 1.0);
      const double span = down_end - up_end;
      return cos_anneal(o.lr, min_lr, span > 0 ? std::min(1.0, (s - up_end) / span) : 1.0);
    }
  }
  return o.lr;
}

}  // namespace gradlens::train
