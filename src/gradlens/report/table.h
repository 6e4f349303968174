// Result tables rendered as Markdown and CSV (RFC 4180), and number
// formatting shared by every report.
#pragma once

#include <string>
#include <vector>

namespace gradlens::report {

/// A table of text cells. `groups` optionally spans the columns above the
/// header, as the seed's clustering tables put "Resnet18" over its ARI, NMI
/// and Silhouette columns: each entry is (label, number of columns spanned);
/// the spans must add up to the number of columns.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::pair<std::string, int>> groups;
};

/// Markdown (GitHub pipe table). A group row, when present, becomes the first
/// header row with each label in the first column of its span. Cells are
/// escaped ('|' -> '\|', newlines -> spaces). Throws c10::Error when a row's
/// length differs from the header's or the group spans do not add up.
std::string to_markdown(const Table& t);

/// CSV with a header line (group labels, when present, are prefixed to the
/// column names as "<group>.<column>"). Quotes fields holding a comma, quote
/// or newline. Same errors as to_markdown().
std::string to_csv(const Table& t);

/// A number for a table: fixed with `digits` decimals; "nan" for NaN and
/// "inf"/"-inf" for infinities (never an empty cell).
std::string format_number(double v, int digits = 4);

/// "mean ± std" with `digits` decimals.
std::string format_mean_std(double mean, double std, int digits = 3);

}  // namespace gradlens::report
