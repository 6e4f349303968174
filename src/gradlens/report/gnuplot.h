// Figures drawn by gnuplot (Debian's gnuplot-nox, pngcairo terminal). Each
// figure leaves its data (<stem>.dat) and script (<stem>.gp) beside the PNG,
// so a user can restyle it and rerun `gnuplot <stem>.gp` in that directory.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace gradlens::report {

/// One scatter plot of a grid: 2-D points coloured by group.
struct ScatterPanel {
  std::string title;
  torch::Tensor xy;      ///< [N, 2] float
  torch::Tensor groups;  ///< [N] integer in [0, group_names.size())
  std::vector<std::string> group_names;
  std::string xlabel = "PC1", ylabel = "PC2";
};

struct ScatterGridOptions {
  int rows = 1, cols = 1;
  std::string title;
  int panel_width = 420, panel_height = 360;  ///< pixels per panel
  double point_size = 0.45;
};

/// Draws `panels` (row-major, rows*cols of them) into `png`. Throws
/// c10::Error if the counts or shapes do not match, a group id is out of
/// range, the data are not finite, gnuplot is missing (naming the package
/// gnuplot-nox) or fails (with its message). The PNG appears atomically.
void write_scatter_grid(const std::filesystem::path& png, const std::vector<ScatterPanel>& panels,
                        const ScatterGridOptions& opts);

/// A labelled heat map of a matrix (e.g. a confusion matrix), cell values
/// printed when the matrix is at most 20 x 20.
struct HeatmapOptions {
  std::string title, xlabel, ylabel;
  std::vector<std::string> row_names, col_names;
  int width = 760, height = 680;
};

/// values: [R, C] float or integer. Same errors as write_scatter_grid().
void write_heatmap(const std::filesystem::path& png, const torch::Tensor& values,
                   const HeatmapOptions& opts);

/// Curves over one shared x axis (e.g. the share of flipped labels found
/// against the share of images inspected).
struct LinePlotOptions {
  std::string title, xlabel, ylabel;
  std::vector<std::string> series_names;  ///< one per curve, in the legend
  double xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  /// Also draw the line y = x, dashed (chance for a found-vs-inspected curve).
  bool diagonal = false;
  int width = 720, height = 520;
};

/// x: [P] float; ys: [S, P] float (S = series_names.size()). Same errors as
/// write_scatter_grid().
void write_line_plot(const std::filesystem::path& png, const torch::Tensor& x, const torch::Tensor& ys,
                     const LinePlotOptions& opts);

/// Runs `gnuplot <script>` in the script's directory. Throws c10::Error if
/// gnuplot is not installed or exits non-zero (with its stderr).
void run_gnuplot(const std::filesystem::path& script);

/// Quotes a string for a gnuplot double-quoted literal.
std::string gnuplot_quote(const std::string& s);

}  // namespace gradlens::report
