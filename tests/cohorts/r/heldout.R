# R's numbers for tests/cohorts/r/heldout.py (see there): Rscript heldout.R DIR
suppressMessages({
  library(survival)
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
})
dir <- commandArgs(trailingOnly = TRUE)[1]
d <- read.csv(file.path(dir, "study.csv"))
ends <- read.csv(file.path(dir, "ends.csv"))
d$y <- log10(d$flux_ps)
d$arm <- relevel(factor(d$arm), ref = "Vehicle")
out <- list()
put <- function(key, value) out[[key]] <<- value

# per day: t.test / wilcox.test(treated, control), Holm across the tested days
days <- sort(unique(d$day))
pw <- c(); pm <- c(); tested <- c()
for (day in days) {
  t_ <- d$y[d$day == day & d$arm == "Drug"]
  c_ <- d$y[d$day == day & d$arm == "Vehicle"]
  if (length(t_) < 2 || length(c_) < 2) next
  tt <- t.test(t_, c_)
  ww <- wilcox.test(t_, c_, conf.int = TRUE)
  k <- paste0("day", day, ".")
  put(paste0(k, "welch_t"), tt$statistic); put(paste0(k, "welch_df"), tt$parameter)
  put(paste0(k, "welch_p"), tt$p.value)
  put(paste0(k, "diff_ci_low"), tt$conf.int[1]); put(paste0(k, "diff_ci_high"), tt$conf.int[2])
  put(paste0(k, "mw_w"), ww$statistic); put(paste0(k, "mw_p"), ww$p.value)
  put(paste0(k, "hl"), ww$estimate)
  put(paste0(k, "hl_ci_low"), ww$conf.int[1]); put(paste0(k, "hl_ci_high"), ww$conf.int[2])
  pw <- c(pw, tt$p.value); pm <- c(pm, ww$p.value); tested <- c(tested, day)
}
for (i in seq_along(tested)) {
  put(paste0("day", tested[i], ".welch_p_holm"), p.adjust(pw, "holm")[i])
  put(paste0("day", tested[i], ".mw_p_holm"), p.adjust(pm, "holm")[i])
}

# per-animal OLS slopes and AUC over [0, 17] (trapezoid; all animals imaged on 0 and 17)
animals <- unique(d[, c("animal", "arm")])
slope <- sapply(animals$animal, function(a) coef(lm(y ~ day, d[d$animal == a, ]))[["day"]])
auc <- sapply(animals$animal, function(a) {
  s <- d[d$animal == a & d$day <= 17, ]
  s <- s[order(s$day), ]
  sum(diff(s$day) * (head(s$y, -1) + tail(s$y, -1)) / 2)
})
for (i in seq_len(nrow(animals))) {
  put(paste0("slope.", animals$animal[i]), slope[i])
  put(paste0("auc.", animals$animal[i]), auc[i])
}
drug <- animals$arm == "Drug"
put("slopes.welch_p", t.test(slope[drug], slope[!drug])$p.value)
put("slopes.mw_p", wilcox.test(slope[drug], slope[!drug])$p.value)
put("auc.welch_p", t.test(auc[drug], auc[!drug])$p.value)
put("auc.mw_p", wilcox.test(auc[drug], auc[!drug])$p.value)

# summary per arm per day; T/C %
for (a in levels(d$arm)) for (day in days) {
  y <- d$y[d$arm == a & d$day == day]
  if (!length(y)) next
  k <- paste0("summary.", a, ".", day, ".")
  q <- quantile(y, c(0.25, 0.5, 0.75), type = 7)
  put(paste0(k, "mean"), mean(y)); put(paste0(k, "median"), q[[2]])
  put(paste0(k, "q1"), q[[1]]); put(paste0(k, "q3"), q[[3]])
  if (length(y) > 1) {
    put(paste0(k, "sd"), sd(y))
    put(paste0(k, "gm_ci_low"), 10^(mean(y) - qt(0.975, length(y) - 1) * sd(y) / sqrt(length(y))))
  }
}
for (day in tested) {
  t_ <- d$y[d$day == day & d$arm == "Drug"]
  c_ <- d$y[d$day == day & d$arm == "Vehicle"]
  put(paste0("tc.", day), 100 * 10^(mean(t_) - mean(c_)))
  put(paste0("tc.", day, ".ci_low"), 100 * 10^t.test(t_, c_)$conf.int[1])
}

# mixed model, Kenward-Roger slope contrast (lme4 run to its optimum)
ctl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6))
m <- lmerTest::lmer(y ~ arm * day + (day | animal), data = d, REML = TRUE, control = ctl)
L <- as.numeric(names(fixef(m)) == "armDrug:day")
ct <- contest1D(m, L, ddf = "Kenward-Roger")
put("lmm.reml", REMLcrit(m)); put("lmm.contrast", ct$Estimate)
put("lmm.contrast_se", ct$`Std. Error`); put("lmm.contrast_df", ct$df)
put("lmm.contrast_p", ct$`Pr(>|t|)`)

# time to flux >= 3e7 p/s; censored at the end record
thr <- 3e7
surv <- do.call(rbind, lapply(seq_len(nrow(animals)), function(i) {
  s <- d[d$animal == animals$animal[i], ]
  s <- s[order(s$day), ]
  on <- s$day[s$flux_ps >= thr]
  if (length(on)) data.frame(animal = animals$animal[i], arm = animals$arm[i], time = on[1], event = 1, onset = on[1])
  else data.frame(animal = animals$animal[i], arm = animals$arm[i], time = ends$day[ends$animal == animals$animal[i]], event = 0, onset = Inf)
}))
surv$drug <- as.numeric(surv$arm == "Drug")
sd_ <- survdiff(Surv(time, event) ~ drug, data = surv)
put("surv.logrank_chisq", sd_$chisq)
put("surv.logrank_p", pchisq(sd_$chisq, 1, lower.tail = FALSE))
cx <- summary(coxph(Surv(time, event) ~ drug, data = surv))
put("surv.hr", cx$conf.int[1, 1]); put("surv.hr_ci_low", cx$conf.int[1, 3])
put("surv.cox_p", cx$coefficients[1, 5])
for (a in c("Vehicle", "Drug")) {
  f <- survfit(Surv(time, event) ~ 1, data = surv[surv$arm == a, ])
  med <- summary(f)$table[["median"]]
  if (!is.na(med)) put(paste0("surv.median.", a), med)
  ev <- f$n.event > 0
  for (j in which(ev)) put(paste0("surv.S.", a, ".", f$time[j]), f$surv[j])
}
# incidence among the animals imaged each day: Fisher exact
for (day in days) {
  ids <- d$animal[d$day == day]
  s <- surv[surv$animal %in% ids, ]
  pos <- s$onset <= day
  pt <- sum(pos & s$drug == 1); nt <- sum(s$drug == 1)
  pc <- sum(pos & s$drug == 0); nc <- sum(s$drug == 0)
  if (nt == 0 || nc == 0) next
  ft <- fisher.test(matrix(c(pt, nt - pt, pc, nc - pc), 2, byrow = TRUE))
  put(paste0("inc.", day, ".p"), ft$p.value)
  if (is.finite(ft$estimate) && ft$estimate > 0) put(paste0("inc.", day, ".or"), ft$estimate)
}
write.table(data.frame(key = names(out), value = sprintf("%.17g", unlist(out))),
            file.path(dir, "r.csv"), sep = ",", row.names = FALSE, col.names = FALSE, quote = FALSE)
