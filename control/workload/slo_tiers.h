/* The SLO tiers `strobe agents` searches: a custom tier, or one or all tiers of a model
 * profile from slo_tiers.json (its "source" says where they come from), compiled into strobe. */
#ifndef STROBE_SLO_TIERS_H
#define STROBE_SLO_TIERS_H
#include <cjson/cJSON.h>
#include <stddef.h>

/* A JSON array of tiers, each {"tier", "output_speed_p25_tokens_per_s", "ttft_p95_s"}: the
 * tier named "custom" when speed_p25 >= 0 (--slo-speed, --slo-ttft), else the tiers of
 * PROFILE (--model-profile) named TIER (--slo-tier), or all of them when TIER is "all",
 * each renamed PROFILE/TIER. NULL with one sentence in err for an unknown profile or tier. */
cJSON *slo_tiers_select(const char *profile, const char *tier, double speed_p25, double ttft_p95,
                        char *err, size_t errlen);

#endif
