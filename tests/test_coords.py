import torch

from nvfilter.coords import cell_centres, frame_time, index_coords, rows_coords


def test_cell_centres_are_pixel_centres_in_minus_one_one():
    assert torch.allclose(cell_centres(4), torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert torch.allclose(cell_centres(1), torch.tensor([0.0]))


def test_twice_finer_grid_is_symmetric_around_coarse_pixels():
    coarse, fine = cell_centres(5), cell_centres(10)
    assert torch.allclose((fine[0::2] + fine[1::2]) / 2, coarse, atol=1e-6)


def test_frame_time_of_integer_and_fractional_positions():
    assert frame_time(0, 4) == -0.75
    assert frame_time(3, 4) == 0.75
    assert frame_time(1.5, 4) == 0.0


def test_index_coords_matches_frame_grid():
    width, height, frames = 5, 3, 4
    index = torch.arange(width * height * frames)
    coords = index_coords(index, width, height, frames)
    for k in range(frames):
        grid = rows_coords(width, height, frame_time(k, frames), 0, height)
        assert torch.allclose(coords[k * width * height : (k + 1) * width * height], grid)
    assert coords.min() > -1 and coords.max() < 1


def test_rows_coords_order_is_x_y_t_raster():
    grid = rows_coords(2, 2, 0.5, 0, 2)
    assert grid.tolist() == [[-0.5, -0.5, 0.5], [0.5, -0.5, 0.5], [-0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]
    assert rows_coords(2, 2, 0.5, 1, 2).tolist() == grid[2:].tolist()
