# Figures like the paper's Figure 2 from the example's CSV files:
#   gnuplot -e "results='results'; figures='figures'" plot.gnuplot
# (gnuplot-nox from Debian). One PNG per model: training loss per iteration, validation loss per epoch, and the
# step size α per iteration, for the fixed-step methods and their additive hypergradient forms.
if (!exists("results")) results = 'results'
if (!exists("figures")) figures = 'figures'
set datafile separator ','
set terminal pngcairo size 1500,450 font ",10"
methods = "sgd sgd-hd sgdn sgdn-hd adam adam-hd"
colors = "#1f77b4 #1f77b4 #2ca02c #2ca02c #d62728 #d62728"
dashes = "1 2 1 2 1 2"
pick(m, c) = (strcol(1) eq model && strcol(2) eq m) ? column(c) : NaN

do for [model in "logreg mlp"] {
  set output sprintf('%s/%s.png', figures, model)
  set multiplot layout 1,3 title sprintf('%s on MNIST (8,000 training digits): fixed step size (solid) against hypergradient descent (dashed)', model)
  set logscale y
  set xlabel 'iteration'
  set ylabel 'training loss (minibatch)'
  plot for [i=1:words(methods)] sprintf('%s/iterations.csv', results) using (pick(word(methods,i), 3)):(pick(word(methods,i), 4)) \
       every ::1 with lines lw 1 dt int(word(dashes,i)) lc rgb word(colors,i) title word(methods,i)
  set xlabel 'epoch'
  set ylabel 'validation loss'
  plot for [i=1:words(methods)] sprintf('%s/epochs.csv', results) using (pick(word(methods,i), 3)):(pick(word(methods,i), 4)) \
       every ::1 with linespoints lw 2 dt int(word(dashes,i)) lc rgb word(colors,i) title word(methods,i)
  set xlabel 'iteration'
  set ylabel 'step size α'
  plot for [i=1:words(methods)] sprintf('%s/iterations.csv', results) using (pick(word(methods,i), 3)):(pick(word(methods,i), 5)) \
       every ::1 with lines lw 2 dt int(word(dashes,i)) lc rgb word(colors,i) title word(methods,i)
  unset multiplot
  unset logscale y
}
