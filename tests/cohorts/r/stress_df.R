# Kenward-Roger / Satterthwaite df of the arm:day contrast on the non-singular stress studies
# (see stress.py): Rscript tests/cohorts/r/stress_df.R DIR > DIR/df.txt; python stress.py DIR df
suppressMessages({
  library(lme4); library(lmerTest); library(pbkrtest)})
dir <- commandArgs(trailingOnly = TRUE)[1]
ctl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6), check.conv.grad = .makeCC("ignore", tol = 2e-3), check.conv.singular = .makeCC("ignore", tol = 1e-4))
for (seed in 0:39) {
  d <- read.csv(file.path(dir, sprintf("s%d.csv", seed))); d$arm <- relevel(factor(d$arm), ref = "v")
  m <- suppressWarnings(suppressMessages(lmerTest::lmer(y ~ arm * day + (1 + day | animal), d, control = ctl)))
  if (isSingular(m)) next
  L <- as.numeric(names(fixef(m)) == "armd:day")
  kr <- contest1D(m, L, ddf = "Kenward-Roger"); sa <- contest1D(m, L, ddf = "Satterthwaite")
  cat(seed, sprintf("%.12g", c(kr$df, kr$`Std. Error`, kr$`Pr(>|t|)`, sa$df, sa$`Std. Error`, sa$`Pr(>|t|)`)), "\n")
}
