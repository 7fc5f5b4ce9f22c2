# See stress.py.
suppressMessages(library(lme4))
dir <- commandArgs(trailingOnly = TRUE)[1]
ctl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6), check.conv.grad = .makeCC("ignore", tol = 2e-3), check.conv.singular = .makeCC("ignore", tol = 1e-4))
nm <- lmerControl(optimizer = "Nelder_Mead", optCtrl = list(FtolAbs = 1e-14, FtolRel = 1e-15, XtolRel = 1e-12, maxfun = 1e6), check.conv.grad = .makeCC("ignore", tol = 2e-3), check.conv.singular = .makeCC("ignore", tol = 1e-4))
terms <- c(intercept_slope = "(1 + day | animal)", intercept_slope_uncorrelated = "(1 + day || animal)", intercept = "(1 | animal)")
for (seed in 0:39) {
  d <- read.csv(file.path(dir, sprintf("s%d.csv", seed))); d$arm <- relevel(factor(d$arm), ref = "v")
  for (st in names(terms)) {
    f <- as.formula(paste("y ~ arm * day +", terms[[st]]))
    m0 <- suppressWarnings(suppressMessages(lmer(f, d)))
    m1 <- suppressWarnings(suppressMessages(lmer(f, d, control = ctl)))
    m2 <- suppressWarnings(suppressMessages(lmer(f, d, control = nm, start = list(theta = getME(m1, "theta")))))
    best <- min(REMLcrit(m1), REMLcrit(m2))
    sing <- if (REMLcrit(m1) <= REMLcrit(m2)) isSingular(m1) else isSingular(m2)
    cat(seed, st, sprintf("%.12f", REMLcrit(m0)), sprintf("%.12f", best), isSingular(m0), sing, "\n")
  }
}
