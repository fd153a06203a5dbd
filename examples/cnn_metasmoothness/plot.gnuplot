# Figures from the example's CSV file:  gnuplot -e "results='results'; figures='figures'" plot.gnuplot
if (!exists("results")) results = 'results'
if (!exists("figures")) figures = 'figures'
set datafile separator ','
set terminal pngcairo size 1400,500 font ",10"
set output sprintf('%s/cnn_metasmoothness.png', figures)
set multiplot layout 1,2 title 'Metasmoothness of a small ResNet on MNIST-10k (higher: metagradients worth following)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8
set xtics rotate by -45 scale 0
set bmargin 7
set key top left
set ylabel 'metasmoothness score'
set yrange [-0.2:1.05]
label(bn, s, b) = sprintf('%s, x%s, b%d', bn, s == 1 ? '1' : '0.1', b)
plot sprintf('%s/metasmoothness.csv', results) using 4:xtic(label(strcol(1), $2, $3)) every ::1 title 'learning rates' lc rgb '#1f77b4', \
     '' using 5 every ::1 title 'data weights' lc rgb '#ff7f0e'
set ylabel 'test accuracy after training'
set yrange [0:1]
plot sprintf('%s/metasmoothness.csv', results) using 7:xtic(label(strcol(1), $2, $3)) every ::1 notitle lc rgb '#2ca02c'
unset multiplot
