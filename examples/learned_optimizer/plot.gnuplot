# Figures from the example's CSV files:  gnuplot -e "results='results'; figures='figures'" plot.gnuplot
# Like the paper's figures: the minibatch loss along the runs (mean over the evaluation optimizees), log scale.
if (!exists("results")) results = 'results'
if (!exists("figures")) figures = 'figures'
set datafile separator ','
set terminal pngcairo size 1500,850 font ",10"
set output sprintf('%s/learned_optimizer.png', figures)
set multiplot layout 2,3 title 'The LSTM optimizer against tuned baselines (mean loss over 20 fresh optimizees; baselines tuned per task and horizon)'
set logscale y
set xlabel 'step'
set ylabel 'loss'
set key top right
panel(task, steps, name) = sprintf('%s/curves_%s_%d.csv', results, task, steps)
do for [p in "quadratic:100 mnist:100 mnist:200 mnist-40:200 mnist-2layer:200 mnist-relu:200"] {
  task = p[1:strstrt(p, ':') - 1]
  steps = int(p[strstrt(p, ':') + 1:])
  set title sprintf('%s, %d steps', task, steps)
  plot panel(task, steps, '') using 1:2 every ::1 with lines lw 2.5 lc rgb '#d62728' title 'LSTM (learned)', \
       '' using 1:4 every ::1 with lines lw 1.5 lc rgb '#7f7f7f' title 'SGD', \
       '' using 1:6 every ::1 with lines lw 1.5 lc rgb '#2ca02c' title 'RMSprop', \
       '' using 1:8 every ::1 with lines lw 1.5 lc rgb '#1f77b4' title 'Adam', \
       '' using 1:10 every ::1 with lines lw 1.5 lc rgb '#ff7f0e' title 'NAG'
}
unset multiplot
