#include "gradlens/report/colormap.h"
#include <torch/types.h>

#include <algorithm>
#include <cmath>

#include "gradlens/core/check.h"

namespace gradlens::report {
namespace {

struct CmapNode {
  double x, y;
};

/// Piecewise-linear interpolation through (x, y) nodes (x ascending, 0 .. 1).
double cmap_segment(const std::vector<CmapNode>& nodes, double x) {
  for (size_t i = 1; i < nodes.size(); ++i) {
    if (x <= nodes[i].x) {
      const auto& a = nodes[i - 1];
      const auto& b = nodes[i];
      return b.x == a.x ? b.y : a.y + (b.y - a.y) * (x - a.x) / (b.x - a.x);
    }
  }
  return nodes.back().y;
}

uint8_t cmap_byte(double v) {
  return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
}

Rgb cmap_jet(double t) {
  // matplotlib/_cm.py _jet_data.
  static const std::vector<CmapNode> red = {{0, 0}, {0.35, 0}, {0.66, 1}, {0.89, 1}, {1, 0.5}};
  static const std::vector<CmapNode> green = {{0, 0}, {0.125, 0}, {0.375, 1}, {0.64, 1}, {0.91, 0}, {1, 0}};
  static const std::vector<CmapNode> blue = {{0, 0.5}, {0.11, 1}, {0.34, 1}, {0.65, 0}, {1, 0}};
  // matplotlib's lookup: N = 256 entries at x = i / 255, value t -> entry
  // floor(t * 256) clipped to 255.
  const int64_t i = std::min<int64_t>(255, static_cast<int64_t>(std::floor(t * 256.0)));
  const double x = static_cast<double>(i) / 255.0;
  return {cmap_byte(cmap_segment(red, x)), cmap_byte(cmap_segment(green, x)),
          cmap_byte(cmap_segment(blue, x))};
}

Rgb cmap_turbo(double x) {
  // Copyright 2019 Google LLC, SPDX-License-Identifier: Apache-2.0: the
  // polynomial approximation of the Turbo colormap (Anton Mikhailov; GLSL by
  // Ruofei Du).
  const double v4[4] = {1.0, x, x * x, x * x * x};
  const double v2[2] = {v4[2] * v4[2], v4[3] * v4[2]};
  auto dot = [&](const double (&k4)[4], const double (&k2)[2]) {
    return v4[0] * k4[0] + v4[1] * k4[1] + v4[2] * k4[2] + v4[3] * k4[3] + v2[0] * k2[0] + v2[1] * k2[1];
  };
  static const double kr4[4] = {0.13572138, 4.61539260, -42.66032258, 132.13108234};
  static const double kg4[4] = {0.09140261, 2.19418839, 4.84296658, -14.18503333};
  static const double kb4[4] = {0.10667330, 12.64194608, -60.58204836, 110.36276771};
  static const double kr2[2] = {-152.94239396, 59.28637943};
  static const double kg2[2] = {4.27729857, 2.82956604};
  static const double kb2[2] = {-89.90310912, 27.34824973};
  return {cmap_byte(dot(kr4, kr2)), cmap_byte(dot(kg4, kg2)), cmap_byte(dot(kb4, kb2))};
}

}  // namespace

const std::vector<std::string>& colormap_names() {
  static const std::vector<std::string> names = {"jet", "turbo"};
  return names;
}

Colormap parse_colormap(const std::string& name, const std::string& flag) {
  if (name == "jet") return Colormap::kJet;
  if (name == "turbo") return Colormap::kTurbo;
  GRADLENS_CHECK_OPTION(false, flag, ": unknown colour map '", name, "'; use jet or turbo");
  return Colormap::kJet;
}

std::string colormap_name(Colormap map) { return map == Colormap::kTurbo ? "turbo" : "jet"; }

Rgb colormap_rgb(Colormap map, double t) {
  if (std::isnan(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0);
  return map == Colormap::kJet ? cmap_jet(t) : cmap_turbo(t);
}

}  // namespace gradlens::report
