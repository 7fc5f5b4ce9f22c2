# Reference values for tests/cohorts/test_cohorts_readouts.py (Rscript readouts_fisher_ci.R).
options(digits=15)
# R 4.2 fisher.test's conditional MLE and CI code, with uniroot(tol = 1e-14) instead of
# its default tol (.Machine$double.eps^0.25 ~ 1.2e-4, which limits R's printed CI to ~1e-4).
ci <- function(tab, conf.level=0.95) {
  m <- sum(tab[, 1L]); n <- sum(tab[, 2L]); k <- sum(tab[1L, ]); x <- tab[1L, 1L]
  lo <- max(0L, k - n); hi <- min(k, m); support <- lo:hi
  logdc <- dhyper(support, m, n, k, log = TRUE)
  dnhyper <- function(ncp) { d <- logdc + log(ncp) * support; d <- exp(d - max(d)); d / sum(d) }
  mnhyper <- function(ncp) { if (ncp == 0) return(lo); if (ncp == Inf) return(hi); sum(support * dnhyper(ncp)) }
  pnhyper <- function(q, ncp, upper.tail = FALSE) {
    if (ncp == 1) return(if (upper.tail) phyper(x - 1, m, n, k, lower.tail = FALSE) else phyper(x, m, n, k))
    if (ncp == 0) return(as.numeric(if (upper.tail) q <= lo else q >= lo))
    sum(dnhyper(ncp)[if (upper.tail) support >= q else support <= q]) }
  U <- function(t) uniroot(t, c(0, 1), tol=1e-14)$root
  E <- function(t) uniroot(t, c(.Machine$double.eps, 1), tol=1e-14)$root
  mu <- mnhyper(1)
  est <- if (mu > x) U(function(t) mnhyper(t) - x) else if (mu < x) 1/E(function(t) mnhyper(1/t) - x) else 1
  alpha <- (1 - conf.level)/2
  p <- pnhyper(x, 1); up <- if (x == hi) Inf else if (p < alpha) U(function(t) pnhyper(x, t) - alpha) else 1/E(function(t) pnhyper(x, 1/t) - alpha)
  p <- pnhyper(x, 1, upper.tail = TRUE); low <- if (x == lo) 0 else if (p > alpha) U(function(t) pnhyper(x, t, upper.tail = TRUE) - alpha) else 1/E(function(t) pnhyper(x, 1/t, upper.tail = TRUE) - alpha)
  c(est, low, up)
}
print(ci(matrix(c(3, 4, 7, 1), 2)))
print(ci(matrix(c(1, 6, 7, 1), 2)))
print(fisher.test(matrix(c(3, 4, 7, 1), 2))$conf.int)
