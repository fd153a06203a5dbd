# Figures from the example's CSV files:  gnuplot -e "results='results'; figures='figures'" plot.gnuplot
if (!exists("results")) results = 'results'
if (!exists("figures")) figures = 'figures'
set datafile separator ','
set terminal pngcairo size 1400,450 font ",10"
set output sprintf('%s/data_poisoning.png', figures)
set multiplot layout 1,2 title 'Poisoning 2.5% of the MNIST training images by metagradient ascent'
set xlabel 'attack step'
set ylabel 'validation loss after training'
plot sprintf('%s/attack.csv', results) using 1:2 every ::1 with linespoints lw 2 lc rgb '#d62728' notitle
set style data histograms
set style fill solid 0.7
set boxwidth 0.6
set ylabel 'test accuracy after retraining (another initialization)'
set xlabel 'training data'
set yrange [0.8:0.95]
plot sprintf('%s/results.csv', results) using 2:xtic(1) every ::1 lc rgb '#1f77b4' notitle
unset multiplot
