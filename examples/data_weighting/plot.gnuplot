# Figures from the example's CSV files:  gnuplot -e "results='results'; figures='figures'" plot.gnuplot
# For LeNet-5's run:  gnuplot -e "results='results-lenet5'; figures='figures'; name='data_weighting_lenet5'; model='LeNet-5'" plot.gnuplot
if (!exists("results")) results = 'results'
if (!exists("figures")) figures = 'figures'
if (!exists("name")) name = 'data_weighting'
if (!exists("model")) model = 'an MLP'
set datafile separator ','
set terminal pngcairo size 1400,450 font ",10"
set output sprintf('%s/%s.png', figures, name)
set multiplot layout 1,2 title sprintf('Learning per-example weights of %s by metagradient descent (30%% of the training labels flipped)', model)
set style fill transparent solid 0.5
set xlabel 'learned weight'
set ylabel 'examples'
set xrange [0:2]
plot sprintf('%s/weights.csv', results) using (column(2) == 1 ? column(3) : NaN) every ::1 bins=40 binrange [0:2] with boxes lc rgb '#d62728' title 'flipped label', \
     '' using (column(2) == 0 ? column(3) : NaN) every ::1 bins=40 binrange [0:2] with boxes lc rgb '#1f77b4' title 'clean label'
set autoscale x
set xlabel 'metagradient step'
set ylabel 'validation loss'
set y2label 'ROC AUC of the weights'
set y2tics
set ytics nomirror
set key center right
plot sprintf('%s/mgd.csv', results) using 1:2 every ::1 with linespoints lw 2 lc rgb '#1f77b4' title 'validation loss', \
     '' using 1:3 every ::1 axes x1y2 with linespoints lw 2 lc rgb '#d62728' title 'AUC (flipped = low weight)'
unset multiplot
