// Saliency map metrics of the MIT/Tuebingen saliency benchmark, in one include:
//  - two continuous maps:           cc, kld, sim      (distribution_metrics.h)
//  - a map and a binary fixation map: nss, auc_judd, auc_borji, auc_shuffled
//                                                      (fixation_metrics.h)
//  - per-image results and their mean ± std:          (metric_result.h)
#pragma once

#include "gradlens/saliency/distribution_metrics.h"
#include "gradlens/saliency/fixation_metrics.h"
#include "gradlens/saliency/metric_result.h"
