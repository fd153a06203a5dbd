# Figures from the example's output:  gnuplot -e "results='results'; figures='figures'" plot.gnuplot
# For LeNet-5's run:  gnuplot -e "results='results-lenet5'; figures='figures'; name='data_poisoning_lenet5'; model='LeNet-5'" plot.gnuplot
if (!exists("results")) results = 'results'
if (!exists("figures")) figures = 'figures'
if (!exists("name")) name = 'data_poisoning'
if (!exists("model")) model = 'an MLP'
set datafile separator ','
set terminal pngcairo size 1400,450 font ",10"
set output sprintf('%s/%s.png', figures, name)
set multiplot layout 1,2 title sprintf('Poisoning 2.5%% of the MNIST training images of %s by metagradient ascent', model)
set xlabel 'attack step'
set ylabel 'validation loss after training'
plot sprintf('%s/attack.csv', results) using 1:2 every ::1 with linespoints lw 2 lc rgb '#d62728' notitle
stats sprintf('%s/results.csv', results) using 2 every ::1 nooutput
set style data histograms
set style fill solid 0.7
set boxwidth 0.6
set ylabel 'test accuracy after retraining (another initialization)'
set xlabel 'training data'
set yrange [STATS_min - 0.05:1]
plot sprintf('%s/results.csv', results) using 2:xtic(1) every ::1 lc rgb '#1f77b4' notitle
unset multiplot

# The first eight poisoned training images: originals above, poisoned below.
set datafile separator whitespace
set terminal pngcairo size 1400,380 font ",10"
set output sprintf('%s/%s_images.png', figures, name)
set title sprintf('The first eight poisoned training images, attacking %s: originals above, after the attack below', model)
set palette gray
unset colorbox
unset xtics
unset ytics
unset xlabel
unset ylabel
unset key
set autoscale
set yrange [*:*] reverse
set size ratio -1
plot sprintf('%s/images.txt', results) matrix with image
