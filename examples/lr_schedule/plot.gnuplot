# Figures from the example's CSV files:  gnuplot -e "results='results'; figures='figures'" plot.gnuplot
# For LeNet-5's run:  gnuplot -e "results='results-lenet5'; figures='figures'; name='lr_schedule_lenet5'; model='LeNet-5'" plot.gnuplot
if (!exists("results")) results = 'results'
if (!exists("figures")) figures = 'figures'
if (!exists("name")) name = 'lr_schedule'
if (!exists("model")) model = 'an MLP'
set datafile separator ','
set terminal pngcairo size 1400,450 font ",10"
set output sprintf('%s/%s.png', figures, name)
set multiplot layout 1,2 title sprintf('Tuning the learning rate of %s on MNIST-10k (500 steps of SGD with momentum 0.9)', model)
set logscale y
set xlabel 'training step'
set ylabel 'learning rate'
set key bottom center
plot sprintf('%s/schedules.csv', results) using 1:2 every ::1 with lines lw 2 lc rgb '#1f77b4' title 'best of the grid (52 schedules)', \
     '' using 1:3 every ::1 with lines lw 2 lc rgb '#d62728' title 'metagradient descent (from flat 0.01)', \
     '' using 1:4 every ::1 with lines lw 2 lc rgb '#2ca02c' title 'hypergradient descent (online)'
unset logscale y
set xlabel 'metagradient step'
set ylabel 'validation loss after training'
set key top right
stats sprintf('%s/grid.csv', results) using 4 every ::1 nooutput
grid_best = STATS_min
stats sprintf('%s/hd.csv', results) using 2 every ::1 nooutput
hd_best = STATS_min
plot sprintf('%s/mgd.csv', results) using 1:2 every ::1 with linespoints lw 2 lc rgb '#d62728' title 'metagradient descent', \
     grid_best with lines dt 2 lw 2 lc rgb '#1f77b4' title 'best of the grid', \
     hd_best with lines dt 2 lw 2 lc rgb '#2ca02c' title 'best hypergradient run'
unset multiplot
