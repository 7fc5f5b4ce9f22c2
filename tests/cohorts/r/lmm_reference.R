# Reference fits for tests/cohorts/test_cohorts_lmm_r.py, written to
# tests/cohorts/lmm_r_reference.py (a Python literal; CI does not run R).
#
#   Rscript tests/cohorts/r/lmm_reference.R /work/shared/reference-data/longitudinal \
#       > tests/cohorts/lmm_r_reference.py && ruff format tests/cohorts/lmm_r_reference.py
#
# Every fit: lme4::lmer(y ~ 0 + X + <random>, REML = TRUE) (or ML where named) with X the
# fixed-effect columns of model.matrix(~ arm * day) that the model has, fitted twice: with
# lme4's default control ("deviance_default") and with bobyqa run to rhoend = 1e-12 then
# Nelder-Mead, so that the reference is the optimum itself (lme4's default stops up to
# 4e-5 short of it on these data, and warns so on three fits). lmerTest::summary with
# ddf = "Kenward-Roger" (pbkrtest::vcovAdj + Lb_ddf) and ddf = "Satterthwaite", and each
# arm's growth rate (day + arm:day) through lmerTest::contest1D(..., confint = TRUE).
suppressMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
})
args <- commandArgs(trailingOnly = TRUE)
ref <- args[1]
here <- "tests/cohorts/data"

num <- function(x) if (is.na(x)) "None" else sprintf("%.17g", x)
vec <- function(x) paste0("(", paste(vapply(x, num, ""), collapse = ", "), if (length(x) == 1) ",)" else ")")

fe_name <- function(nm) {
  nm <- sub("^X", "", nm)
  nm <- sub("^\\(Intercept\\)$", "Intercept", nm)
  lev <- sub(".*arm([^:]*).*", "\\1", nm)
  if (grepl("arm", nm)) {
    if (grepl("day", nm)) return(sprintf("arm[%s]:day", lev))
    return(sprintf("arm[%s]", lev))
  }
  nm
}

structure_term <- c(
  intercept_slope = "(1 + day | animal)",
  intercept_slope_uncorrelated = "(1 + day || animal)",
  intercept = "(1 | animal)",
  slope = "(0 + day | animal)"
)

tight <- lmerControl(
  optimizer = "bobyqa",
  optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
  check.conv.grad = .makeCC("ignore", tol = 2e-3)
)
tight_nm <- lmerControl(
  optimizer = "Nelder_Mead",
  optCtrl = list(FtolAbs = 1e-14, FtolRel = 1e-15, XtolRel = 1e-12, maxfun = 1e6),
  check.conv.grad = .makeCC("ignore", tol = 2e-3)
)

design <- function(d, fixed) {
  X <- model.matrix(~ arm * day, d)
  keep <- switch(fixed,
    full = colnames(X),
    common = colnames(X)[!grepl("^arm[^:]*$", colnames(X))],
    noint = colnames(X)[grepl("day", colnames(X))]
  )
  d$X <- X[, keep, drop = FALSE]
  d
}

emit_fit <- function(key, d, fixed, structure, reml = TRUE) {
  cat(sprintf("    %s: {\n", key))
  d <- design(d, fixed)
  if (structure == "none") {
    m <- lm(y ~ 0 + X, data = d)
    s <- summary(m)
    cf <- coef(s)
    cat(sprintf("        \"structure\": \"none\", \"n\": %d,\n", nrow(d)))
    cat(sprintf("        \"sigma2\": %s,\n", num(s$sigma^2)))
    cat("        \"coef\": {\n")
    for (i in seq_len(nrow(cf))) {
      row <- c(cf[i, 1], cf[i, 2], m$df.residual, cf[i, 3], cf[i, 4])
      cat(sprintf("            \"%s\": {\"kr\": %s, \"satterthwaite\": %s},\n",
                  fe_name(rownames(cf)[i]), vec(row), vec(row)))
    }
    cat("        },\n    },\n")
    return(invisible())
  }
  f <- as.formula(paste("y ~ 0 + X +", structure_term[[structure]]))
  crit <- function(m) if (reml) REMLcrit(m) else deviance(m)
  m0 <- suppressWarnings(suppressMessages(lme4::lmer(f, data = d, REML = reml)))
  m <- suppressMessages(lmerTest::lmer(f, data = d, REML = reml, control = tight))
  # polish: Nelder-Mead from bobyqa's optimum, keep the lower criterion
  m2 <- suppressMessages(lmerTest::lmer(f, data = d, REML = reml, control = tight_nm,
                                       start = list(theta = getME(m, "theta"))))
  if (crit(m2) < crit(m)) m <- m2
  cat(sprintf("        \"structure\": \"%s\", \"n\": %d,\n", structure, nrow(d)))
  cat(sprintf("        \"deviance_default\": %s,\n", num(crit(m0))))
  cat(sprintf("        \"deviance\": %s,\n", num(crit(m))))
  cat(sprintf("        \"singular\": %s,\n", if (isSingular(m)) "True" else "False"))
  cat(sprintf("        \"theta\": %s,\n", vec(getME(m, "theta"))))
  vc <- as.data.frame(VarCorr(m))
  cat(sprintf("        \"sigma2\": %s,\n", num(sigma(m)^2)))
  g <- vc[vc$grp != "Residual", ]
  cat("        \"varcorr\": {")
  for (i in seq_len(nrow(g))) {
    cat(sprintf("\"%s|%s\": %s, ", g$var1[i], ifelse(is.na(g$var2[i]), "", g$var2[i]), num(g$vcov[i])))
  }
  cat("},\n")
  kr <- if (reml) coef(summary(m, ddf = "Kenward-Roger")) else NULL
  sa <- coef(summary(m, ddf = "Satterthwaite"))
  cat("        \"coef\": {\n")
  for (i in seq_len(nrow(sa))) {
    krr <- if (reml) vec(kr[i, ]) else "None"
    cat(sprintf("            \"%s\": {\"kr\": %s, \"satterthwaite\": %s},\n",
                fe_name(rownames(sa)[i]), krr, vec(sa[i, ])))
  }
  cat("        },\n")
  # each arm's growth rate: day (+ arm:day)
  b <- fixef(m)
  cat("        \"rates\": {\n")
  for (lev in levels(d$arm)) {
    L <- as.numeric(names(b) == "Xday")
    inter <- which(names(b) == paste0("Xarm", lev, ":day"))
    if (length(inter)) L[inter] <- 1
    out <- c()
    for (ddf in if (reml) c("Kenward-Roger", "Satterthwaite") else c("Satterthwaite")) {
      ct <- contest1D(m, L, ddf = ddf, confint = TRUE)
      out <- c(out, vec(c(ct$Estimate, ct$`Std. Error`, ct$df, ct$`t value`, ct$`Pr(>|t|)`, ct$lower, ct$upper)))
    }
    if (!reml) out <- c("None", out)
    cat(sprintf("            \"%s\": {\"kr\": %s, \"satterthwaite\": %s},\n", lev, out[1], out[2]))
  }
  cat("        },\n    },\n")
}

prep <- function(animal, arm, day, y, control) {
  d <- data.frame(animal = factor(animal), day = as.numeric(day), y = y)
  d$arm <- relevel(factor(arm), ref = control)
  d[!is.na(d$y), ]
}

cat("\"\"\"lme4 / lmerTest / pbkrtest fits written by tests/cohorts/r/lmm_reference.R (see there).\n\n")
cat(sprintf("%s; lme4 %s, lmerTest %s, pbkrtest %s. Coefficient tuples: (estimate, SE, df, t, p);\n",
            R.version.string, packageVersion("lme4"), packageVersion("lmerTest"), packageVersion("pbkrtest")))
cat("rate tuples: (estimate, SE, df, t, p, lower, upper) from contest1D(confint = TRUE).\n\"\"\"\n\n")
cat(sprintf("R_VERSION = \"%s\"\n", R.version.string))
cat("# ruff: noqa: E501\n")
cat("REFERENCE = {\n")

full <- "full"

# tumr melanoma2: lmer(log1p(Volume) ~ Treatment * Day + (Day | ID))
x <- read.csv(file.path(ref, "tumr", "melanoma2.csv"))
d <- prep(x$ID, x$Treatment, x$Day, log1p(x$Volume), "A")
emit_fit("\"melanoma2\"", d, full, "intercept_slope")

# tumr prostate BLI, WT vs DOKO on log10 photons
x <- read.csv(file.path(ref, "tumr", "prostate.csv"))
x <- x[x$Genotype %in% c("WT", "DOKO"), ]
d <- prep(x$ID, x$Genotype, x$Age, log10(x$BLI), "WT")
emit_fit("\"prostate_doko\"", d, full, "intercept_slope")

# CRUK course TGCdSet on ln volume: common intercept, random intercept + slope, REML and ML
x <- read.csv(file.path(ref, "CRUK_mixed_models_course", "TGCdSet.csv"))
d <- prep(x$IDmouse, x$ExpGroup, x$time, log(x$TVolume), "Vehicle")
emit_fit("\"cruk_common\"", d, "common", "intercept_slope")
emit_fit("\"cruk_full\"", d, full, "intercept_slope")
emit_fit("\"cruk_full_ml\"", d, full, "intercept_slope", reml = FALSE)

# Xeva repdx P1: random intercept on ln volume
long <- read.csv(file.path(ref, "Xeva", "repdx_long.csv"))
batches <- read.csv(file.path(ref, "Xeva", "repdx_batches.csv"))
x <- merge(long, batches[batches$batch == "P1", ], by = "model.id")
d <- prep(x$model.id, x$exp.type, x$time, log(x$volume), "control")
emit_fit("\"xeva_p1\"", d, full, "intercept")

# SynergyLMM relative growth: log(V / V0), baseline rows dropped, no intercept
x <- read.csv(file.path(ref, "SynergyLMM", "grwth_data.csv"))
v0 <- tapply(x$TumorVolume[x$Time == 0], x$subject[x$Time == 0], identity)
x$y <- log(x$TumorVolume / v0[as.character(x$subject)])
x <- x[x$Time != 0, ]
d <- prep(x$subject, x$Treatment, x$Time, x$y, "Control")
emit_fit("\"synergy\"", d, "noint", "slope")

# synthetic studies (tests/cohorts/data, made by make_lmm_studies.py) on log10 flux
synth <- list(
  singular_correlation = "vehicle",
  no_slope_variance = "vehicle",
  small_bli = "vehicle",
  three_arms = "isotype"
)
for (nm in names(synth)) {
  x <- read.csv(file.path(here, paste0("lmm_", nm, ".csv")))
  d <- prep(x$animal, x$arm, x$day, log10(x$flux_ps), synth[[nm]])
  for (st in c("intercept_slope", "intercept_slope_uncorrelated", "intercept", "none")) {
    emit_fit(sprintf("(\"%s\", \"%s\")", nm, st), d, full, st)
  }
}
cat("}\n")
